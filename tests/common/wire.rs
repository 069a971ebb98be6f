//! Protobuf wire-format editing, for injecting fields a schema does not know.

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(data: &[u8], at: &mut usize) -> u64 {
    let mut v = 0;
    for shift in (0..64).step_by(7) {
        let b = data[*at];
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
    }
    v
}

/// A varint field `number = value`, as a newer schema might write it.
pub fn field(number: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(number) << 3, &mut out);
    varint(value, &mut out);
    out
}

/// `message` with `extra` appended to the message found by following
/// `path`: at each step, the first length-delimited field of that number.
pub fn inject(message: &[u8], path: &[u32], extra: &[u8]) -> Vec<u8> {
    let Some((&first, rest)) = path.split_first() else {
        return [message, extra].concat();
    };
    let mut out = Vec::new();
    let (mut at, mut done) = (0, false);
    while at < message.len() {
        let start = at;
        let tag = read_varint(message, &mut at);
        let (number, wire_type) = ((tag >> 3) as u32, tag & 7);
        match wire_type {
            0 => {
                read_varint(message, &mut at);
            }
            1 => at += 8,
            5 => at += 4,
            2 => {
                let len = read_varint(message, &mut at) as usize;
                let payload = &message[at..at + len];
                at += len;
                if number == first && !done {
                    done = true;
                    let inner = inject(payload, rest, extra);
                    varint(tag, &mut out);
                    varint(inner.len() as u64, &mut out);
                    out.extend_from_slice(&inner);
                    continue;
                }
            }
            other => panic!("wire type {other}"),
        }
        out.extend_from_slice(&message[start..at]);
    }
    assert!(done, "no field {first} to inject into");
    out
}
