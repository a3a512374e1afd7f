//! `define`d functions, `return`, `add`, `packet(…)` past the header and `config-option`
//! (dhcp-eval(5); ISC tree.c `expr_funcall`, execute.c `return_statement`/`add_statement`,
//! tree.c `expr_packet`/`expr_config_option`). The difftest corpus (`testdata/difftest/`)
//! compares the same configurations with a live ISC dhcpd.

use super::statements::{config, discover, option_bytes};
use super::*;
use crate::config::model::LogPriority;

fn log_lines(decision: &Decision) -> Vec<(LogPriority, String)> {
    decision
        .reply
        .as_ref()
        .expect("a reply")
        .executed
        .log_lines
        .clone()
}

#[test]
fn a_defined_function_returns_its_value_with_the_arguments_bound() {
    let mut harness = Harness::new(config(
        "define join (first, second) { return concat(first, \"-\", second); }",
        "option domain-name = join(\"x\", substring(hardware, 1, 1));",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15), Some(b"x-\x02".to_vec()));
}

#[test]
fn return_ends_the_call_only_with_a_value_and_the_body_sees_the_callers_variables() {
    let mut harness = Harness::new(config(
        "define choose (arg) {\n\
           if arg = \"one\" { return \"first\"; }\n\
           return option user-class;\n\
           set seen = arg;\n\
           return concat(outer, \"-\", seen);\n\
           log(\"never\");\n\
         }",
        "set outer = \"o\";\n\
         option domain-name = choose(\"one\");\n\
         option root-path = choose(\"two\");",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15), Some(b"first".to_vec()));
    // `return option user-class` is null (absent): the body goes on.
    assert_eq!(option_bytes(&offer, 17), Some(b"o-two".to_vec()));
    assert!(log_lines(&offer).is_empty());
}

#[test]
fn a_set_in_a_function_changes_an_existing_variable_else_stays_local() {
    let mut harness = Harness::new(config(
        "define touch (v) { set known-var = v; set local-var = v; log(\"in call\"); return v; }",
        "set known-var = \"before\";\n\
         set result = touch(\"after\");\n\
         log(concat(known-var, \" \", pick-first-value(local-var, \"no local\")));",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(
        log_lines(&offer),
        vec![
            (LogPriority::Info, "in call".to_string()),
            (LogPriority::Info, "after no local".to_string()),
        ]
    );
}

#[test]
fn calls_isc_refuses_to_make_are_null_with_its_error_lines() {
    let mut harness = Harness::new(config(
        "define one (a) { return a; }",
        "set v = \"x\";\n\
         option domain-name = pick-first-value(nosuch(1), v(1), one(1, 2), one(), \"fallback\");",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15), Some(b"fallback".to_vec()));
    assert_eq!(
        log_lines(&offer),
        vec![
            (LogPriority::Error, "nosuch: no such function.".to_string()),
            (LogPriority::Error, "v: not a function.".to_string()),
            (LogPriority::Error, "one: too many arguments.".to_string()),
            (LogPriority::Error, "one: too few arguments.".to_string()),
        ]
    );
}

#[test]
fn unbounded_recursion_is_cut_off_with_one_log_line() {
    let mut harness = Harness::new(config(
        "define deep (a) { return deep(concat(a, \"x\")); }",
        "option domain-name = pick-first-value(deep(\"\"), \"cut\");",
    ));
    // A small stack, like a worker thread's: the cut-off comes before it runs out.
    let offer = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || harness.handle(NOW, &discover(MAC_A, &[])))
        .expect("thread")
        .join()
        .expect("no stack overflow");
    assert_eq!(option_bytes(&offer, 15), Some(b"cut".to_vec()));
    let lines = log_lines(&offer);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].1.contains("nested deeper than"), "{lines:?}");
}

#[test]
fn a_function_is_callable_once_its_define_ran() {
    // The `set` runs before the subnet's `define` (global scope first): ISC finds no such
    // function there; the option is evaluated when the reply is built, after both.
    let mut harness = Harness::new(config(
        "set early = late(\"a\");",
        "define late (a) { return a; }\n option domain-name = pick-first-value(early, late(\"b\"));",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15), Some(b"b".to_vec()));
}

#[test]
fn add_puts_the_request_in_a_class_whose_statements_run_after_the_subnets() {
    let mut harness = Harness::new(config(
        "class \"extra\" { option domain-name \"from-class\"; option root-path \"/class\"; }",
        "option root-path \"/subnet\";\n\
         add \"extra\";\n\
         if check \"extra\" { option host-name \"checked\"; }",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15), Some(b"from-class".to_vec()));
    // ISC runs the class's statements after the subnet's: the class wins.
    assert_eq!(option_bytes(&offer, 17), Some(b"/class".to_vec()));
    assert_eq!(option_bytes(&offer, 12), Some(b"checked".to_vec()));
}

#[test]
fn a_class_added_by_a_host_is_not_executed() {
    let mut harness = Harness::new(config(
        "class \"late\" { option domain-name \"late\"; }\n\
         host a { hardware ethernet 02:00:00:00:00:0a; add \"late\"; }",
        "",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 15), None);
}

#[test]
fn add_bills_the_added_class() {
    let mut harness = Harness::new(config(
        "class \"limited\" { lease limit 1; }",
        "add \"limited\";",
    ));
    assert!(yiaddr(&bind(&mut harness, NOW, MAC_A)).is_some());
    // The class's one lease is taken: ISC finds no billing for a second client.
    let second = harness.handle(NOW, &discover(MAC_B, &[]));
    assert!(second.reply.is_none(), "{:?}", second.outcome);
}

#[test]
fn packet_reads_the_options_area_as_received() {
    let mut harness = Harness::new(config(
        "",
        "option domain-name = packet(240, 3);\n option root-path = packet(1000, 4);",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    // The first option of a DISCOVER from `dhcp_test_messages`: message type 1.
    assert_eq!(option_bytes(&offer, 15), Some(vec![53, 1, 1]));
    // Past the end: empty, as ISC cuts at the packet's length.
    assert_eq!(option_bytes(&offer, 17), None);
}

#[test]
fn config_option_reads_what_the_statements_set_so_far() {
    let mut harness = Harness::new(config(
        "option domain-name \"global\";",
        "set seen = config-option domain-name;\n\
         option domain-name \"subnet\";\n\
         option root-path = concat(config-option domain-name, \"/\", seen);\n\
         option host-name = config-option host-name;",
    ));
    let offer = harness.handle(NOW, &discover(MAC_A, &[]));
    assert_eq!(option_bytes(&offer, 17), Some(b"subnet/global".to_vec()));
    // Itself: a cycle, cut off (ISC recurses until its stack runs out).
    assert_eq!(option_bytes(&offer, 12), None);
}
