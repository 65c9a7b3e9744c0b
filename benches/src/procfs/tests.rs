use super::*;

#[test]
fn reads_this_process() {
    if cfg!(target_os = "linux") {
        let m = memory(None).expect("status");
        assert!(m.vm_rss_kib > 0 && m.vm_hwm_kib >= m.vm_rss_kib / 2);
        assert!(cpu_seconds(None).expect("stat") >= 0.0);
    }
}
