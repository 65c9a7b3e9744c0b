use super::*;

#[test]
fn statement_kinds_read_naturally() {
    assert_eq!(statement_kind("CREATE TABLE t (a INT)"), "CREATE TABLE");
    assert_eq!(
        statement_kind("CREATE OR REPLACE TEMPORARY VIEW v AS SELECT 1"),
        "CREATE VIEW"
    );
    assert_eq!(
        statement_kind("CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc'"),
        "CREATE EXTERNAL TABLE"
    );
    assert_eq!(statement_kind("DROP TABLE IF EXISTS spans"), "DROP TABLE");
    assert_eq!(statement_kind("INSERT INTO spans VALUES (1)"), "INSERT");
    assert_eq!(statement_kind("set datafusion.x = 1"), "SET");
    assert_eq!(
        statement_kind("START TRANSACTION"),
        "a transaction statement"
    );
    assert_eq!(statement_kind(""), "this statement");
}
