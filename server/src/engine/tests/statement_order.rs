//! A scope's statements run in file order (ISC `execute_statements`): whatever its kind, a
//! later statement overrides an earlier one, an `if` body included (the difftest corpus
//! `testdata/difftest/` compares the same configurations with a live ISC dhcpd).

use super::statements::{config, discover, file, option_bytes};
use super::*;

/// Always true for the test's requests (they carry no user class).
const ALWAYS: &str = "not exists user-class";

#[test]
fn an_option_set_after_an_if_wins_over_the_body() {
    let mut harness = Harness::new(config(
        "",
        &format!(
            "option domain-name \"first\";\n if {ALWAYS} {{ option domain-name \"inside\"; }}\n\
             option domain-name \"last\";"
        ),
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15).as_deref(), Some(&b"last"[..]));

    let mut harness = Harness::new(config(
        "",
        &format!(
            "option domain-name \"first\";\n if {ALWAYS} {{ option domain-name \"inside\"; }}"
        ),
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15).as_deref(), Some(&b"inside"[..]));
}

#[test]
fn parameters_and_boot_fields_after_an_if_win_over_the_body() {
    let mut harness = Harness::new(config(
        "",
        &format!(
            "filename \"first\";\n default-lease-time 300;\n\
             if {ALWAYS} {{ filename \"inside\"; default-lease-time 900; next-server 10.0.0.7; }}\n\
             filename \"last\";\n if {ALWAYS} {{ default-lease-time 1200; }}"
        ),
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(file(&offer), b"last");
    // The second `if` comes after the scope's last `default-lease-time`: its body wins.
    assert_eq!(reply_lease_time(&offer), Some(1200));
    assert_eq!(
        super::statements::reply(&offer).siaddr(),
        Ipv4Addr::new(10, 0, 0, 7)
    );

    // The same value written again after the body still overrides it.
    let mut harness = Harness::new(config(
        "",
        &format!("filename \"a\";\n if {ALWAYS} {{ filename \"b\"; }}\n filename \"a\";"),
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(file(&offer), b"a");
}

#[test]
fn default_supersede_prepend_and_append_follow_file_order() {
    let mut harness = Harness::new(config(
        "",
        &format!(
            "append domain-name-servers 10.0.0.9;\n option domain-name-servers 10.0.0.1;\n\
             if {ALWAYS} {{ prepend domain-name-servers 10.0.0.2; }}\n\
             append domain-name-servers 10.0.0.3;\n\
             default domain-name \"default\";\n option domain-name \"plain\";\n\
             option root-path \"/a\";\n if {ALWAYS} {{ default root-path \"/b\"; }}\n\
             supersede host-name \"one\";\n if {ALWAYS} {{ supersede host-name \"two\"; }}\n\
             default host-name \"three\";"
        ),
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    // The plain `option` after the `append` replaces it; the body's prepend and the later
    // append join it.
    assert_eq!(
        option_bytes(&offer, 6),
        Some(vec![10, 0, 0, 2, 10, 0, 0, 1, 10, 0, 0, 3])
    );
    assert_eq!(option_bytes(&offer, 15).as_deref(), Some(&b"plain"[..]));
    assert_eq!(option_bytes(&offer, 17).as_deref(), Some(&b"/a"[..]));
    assert_eq!(option_bytes(&offer, 12).as_deref(), Some(&b"two"[..]));
}

#[test]
fn a_null_value_is_still_set_for_default_and_fails_a_concatenation() {
    // ISC `set_option`: `default` sees an option set by an expression however it evaluates;
    // `append` to a value that evaluates to null is null (`expr_concat`).
    let mut harness = Harness::new(config(
        "",
        "option root-path = option user-class;\n default root-path \"/fallback\";\n\
         option host-name = option user-class;\n append host-name \"-x\";",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 17), None);
    assert_eq!(option_bytes(&offer, 12), None);
    let with = harness.handle(NOW, &discover(MAC_B, &[(77, b"uc")]));
    assert_eq!(option_bytes(&with, 12).as_deref(), Some(&b"uc-x"[..]));
}

#[test]
fn statements_see_variables_as_set_before_them() {
    let mut harness = Harness::new(config(
        "",
        "set tag = \"early\";\n log (info, concat(\"tag \", tag));\n set tag = \"late\";\n\
         option root-path = tag;",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(
        offer
            .reply
            .as_ref()
            .expect("reply")
            .executed
            .log_lines
            .iter()
            .map(|(_, line)| line.as_str())
            .collect::<Vec<_>>(),
        vec!["tag early"]
    );
    // Option values are evaluated when the reply is built, with the final variables.
    assert_eq!(option_bytes(&offer, 17).as_deref(), Some(&b"late"[..]));
}

#[test]
fn break_ends_the_statement_list_it_is_in() {
    let mut harness = Harness::new(config(
        "",
        &format!(
            "option domain-name \"kept\";\n filename \"kept\";\n\
             if {ALWAYS} {{ option root-path \"/in\"; break; option root-path \"/never\"; }}\n\
             option host-name \"after-if\";\n break;\n\
             option domain-name \"never\";\n filename \"never\";"
        ),
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15).as_deref(), Some(&b"kept"[..]));
    assert_eq!(file(&offer), b"kept");
    assert_eq!(option_bytes(&offer, 17).as_deref(), Some(&b"/in"[..]));
    assert_eq!(option_bytes(&offer, 12).as_deref(), Some(&b"after-if"[..]));
}

#[test]
fn return_outside_a_function_has_no_effect() {
    // ISC `return_statement` keeps the value only for a function call; a scope's statements
    // go on after it.
    let mut harness = Harness::new(config("", "return \"x\";\n option domain-name \"after\";"));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15).as_deref(), Some(&b"after"[..]));
}
