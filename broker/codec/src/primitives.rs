//! Wire primitives (spec 1.5): two- and four-byte integers, Variable Byte Integers, UTF-8
//! strings and binary data, read zero-copy from a frame and written to a `BytesMut`.
