//! The README's option table is generated from the option registry; this test fails when
//! they drift apart and prints the table to paste.

#[test]
fn readme_option_table_matches_the_registry() {
    let readme = include_str!("../../README.md");
    let table = trireme_config::markdown_table();
    if !readme.contains(&table) {
        println!("{table}");
    }
    assert!(
        readme.contains(&table),
        "README.md option table is stale; paste the table printed above"
    );
}
