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
    edit(message, path, &|payload| [payload, extra].concat())
}

/// `message` with the payload of the length-delimited field at `path` (as
/// [`inject`] follows it, the last step naming the field) set to `value`.
pub fn replace(message: &[u8], path: &[u32], value: &[u8]) -> Vec<u8> {
    let (&last, parents) = path.split_last().expect("a path names a field");
    edit(message, parents, &|payload| {
        let mut out = Vec::new();
        let mut at = 0;
        let mut done = false;
        while at < payload.len() {
            let (start, number, end) = next_field(payload, &mut at);
            let mut tag_end = start;
            let tag = read_varint(payload, &mut tag_end);
            if number == last && tag & 7 == 2 && !done {
                done = true;
                out.extend_from_slice(&payload[start..tag_end]);
                varint(value.len() as u64, &mut out);
                out.extend_from_slice(value);
            } else {
                out.extend_from_slice(&payload[start..end]);
            }
        }
        assert!(done, "no field {last} to replace");
        out
    })
}

/// The field at `*at`: where it starts, its number, where it ends (`*at`
/// moves there).
fn next_field(message: &[u8], at: &mut usize) -> (usize, u32, usize) {
    let start = *at;
    let tag = read_varint(message, at);
    match tag & 7 {
        0 => {
            read_varint(message, at);
        }
        1 => *at += 8,
        5 => *at += 4,
        2 => {
            let len = read_varint(message, at) as usize;
            *at += len;
        }
        other => panic!("wire type {other}"),
    }
    (start, (tag >> 3) as u32, *at)
}

/// `message` with `change` applied to the payload of the message at `path`
/// (`message` itself when `path` is empty).
fn edit(message: &[u8], path: &[u32], change: &dyn Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
    let Some((&first, rest)) = path.split_first() else {
        return change(message);
    };
    let mut out = Vec::new();
    let (mut at, mut done) = (0, false);
    while at < message.len() {
        let (start, number, end) = next_field(message, &mut at);
        let mut payload_at = start;
        let tag = read_varint(message, &mut payload_at);
        if tag & 7 == 2 && number == first && !done {
            done = true;
            read_varint(message, &mut payload_at);
            let inner = edit(&message[payload_at..end], rest, change);
            varint(tag, &mut out);
            varint(inner.len() as u64, &mut out);
            out.extend_from_slice(&inner);
        } else {
            out.extend_from_slice(&message[start..end]);
        }
    }
    assert!(done, "no field {first} to edit");
    out
}
