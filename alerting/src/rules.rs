//! Rule files (owned by the rules helper; placeholder).
