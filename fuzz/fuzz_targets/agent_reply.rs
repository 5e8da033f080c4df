//! Fuzz the HAProxy agent-check reply parser with any bytes, and with the reply the same
//! bytes describe when read as field values.
//! Invariants: no panic; only the first line counts (anything after a line end changes
//! nothing); a percentage is within `MAX_PERCENT`; ignored words and the reason come from the
//! line; a reply written from fields, with any separators and letter case, reads back as them.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tenbin_health::agent::{AgentAdmin, AgentOper, AgentReply, MAX_PERCENT};

#[derive(Arbitrary, Debug)]
struct Fields {
    percent: Option<u16>,
    maxconn: Option<u32>,
    admin: Option<u8>,
    oper: Option<u8>,
    reason: Option<String>,
    separators: Vec<u8>,
    upper: u32,
}

fuzz_target!(|data: &[u8]| {
    read_line(data, data);
    if let Ok(f) = Fields::arbitrary(&mut Unstructured::new(data)) {
        write_and_read(f);
    }
});

fn read_line(line: &[u8], rest: &[u8]) {
    let r = AgentReply::parse(line);
    if let Ok(reply) = &r {
        assert!(reply.percent.is_none_or(|p| p <= MAX_PERCENT));
        let text = String::from_utf8_lossy(line);
        for w in &reply.ignored {
            assert!(!w.is_empty() && text.contains(w.as_str()), "{w:?}");
        }
        if let Some(reason) = &reply.reason {
            assert!(text.contains(reason.as_str()) && !reason.contains(['\n', '\r']));
        }
    }
    let first_line = line
        .split(|b| matches!(b, b'\n' | b'\r' | 0))
        .next()
        .unwrap_or_default();
    let first = AgentReply::parse(first_line);
    assert_eq!(r, first);
    for end in [b'\n', b'\r', 0] {
        let mut longer = first_line.to_vec();
        longer.push(end);
        longer.extend_from_slice(rest);
        assert_eq!(AgentReply::parse(&longer), first, "line end {end}");
    }
}

fn write_and_read(
    Fields {
        percent,
        maxconn,
        admin,
        oper,
        reason,
        separators,
        upper,
    }: Fields,
) {
    let percent = percent.map(|p| u32::from(p) % (MAX_PERCENT + 1));
    let admin = admin.map(|a| {
        [
            ("ready", AgentAdmin::Ready),
            ("drain", AgentAdmin::Drain),
            ("maint", AgentAdmin::Maint),
        ][usize::from(a) % 3]
    });
    let oper = oper.map(|o| {
        [
            ("up", AgentOper::Up),
            ("down", AgentOper::Down),
            ("fail", AgentOper::Down),
            ("stopped", AgentOper::Down),
        ][usize::from(o) % 4]
    });
    let reason = reason
        .map(|r| r.replace(['\n', '\r', '\0'], " ").trim().to_string())
        .filter(|r| !r.is_empty());
    let mut words: Vec<String> = Vec::new();
    words.extend(percent.map(|p| format!("{p}%")));
    words.extend(maxconn.map(|m| format!("maxconn:{m}")));
    words.extend(admin.map(|(w, _)| w.to_string()));
    words.extend(oper.map(|(w, _)| w.to_string()));
    if words.is_empty() && reason.is_none() {
        return;
    }
    // Mixed case and any of the three separators, one or more between words.
    let mut line = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 || separators.first().is_some_and(|s| s & 1 == 1) {
            let n = 1 + usize::from(separators.get(i).copied().unwrap_or(0) >> 6);
            let sep = [' ', '\t', ','][usize::from(separators.get(i).copied().unwrap_or(0)) % 3];
            line.extend(std::iter::repeat_n(sep, n));
        }
        for (j, c) in w.chars().enumerate() {
            line.push(if upper >> (j % 32) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            });
        }
    }
    if let Some(r) = &reason {
        line.push_str(" #");
        line.push_str(r);
    }
    line.push('\n');
    let got = AgentReply::parse(line.as_bytes()).expect(&line);
    let want = AgentReply {
        percent,
        maxconn,
        admin: admin.map(|(_, a)| a),
        oper: oper.map(|(_, o)| o),
        reason,
        ignored: Vec::new(),
    };
    assert_eq!(got, want, "{line:?}");
}
