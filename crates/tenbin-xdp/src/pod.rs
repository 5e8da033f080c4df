//! aya reads and writes map values as raw bytes and asks for `unsafe impl Pod` as the promise
//! that a type is plain data: `#[repr(C)]`, no padding holes left uninitialised by Rust, no
//! pointers. This is the only unsafe code of the crate; every type here is defined in `abi`
//! with explicit `_pad` fields.
#![allow(unsafe_code)]

use crate::abi::{
    BackendRec, Counters, FlowKeyAbi, FlowVal, LocalKey, MuxConfigAbi, VipInfo, VipKey,
};

// SAFETY: all of these are #[repr(C)] structs of integers and integer arrays with explicit
// padding fields, so every byte is initialised and any bit pattern is a valid value.
unsafe impl aya::Pod for FlowKeyAbi {}
unsafe impl aya::Pod for FlowVal {}
unsafe impl aya::Pod for VipKey {}
unsafe impl aya::Pod for VipInfo {}
unsafe impl aya::Pod for BackendRec {}
unsafe impl aya::Pod for MuxConfigAbi {}
unsafe impl aya::Pod for Counters {}
unsafe impl aya::Pod for LocalKey {}
