//! Fault rigs for the brightbox-ftp tests.
//!
//! - [`proxy::FaultProxy`] forwards TCP connections on 127.0.0.1 to a target and can reset a flow
//!   after a number of bytes, reset flows that stay idle, throttle them, or reset every open flow
//!   on demand.
//! - [`scripted::ScriptedServer`] is a small explicit-FTPS server whose replies and data-channel
//!   behaviour come from a [`scripted::Script`], for faults that real servers do not produce on
//!   demand.
//!
//! The proxy forwards bytes without reading them. Because the control connection is
//! TLS-protected after `AUTH TLS`, it cannot rewrite `227` replies. To put a proxy on the data
//! path, start a second proxy in front of [`scripted::ScriptedServer::data_address`] and make the
//! server advertise the proxy's port with [`scripted::ScriptedServer::set_advertised_data_port`].
//! In front of other servers the proxy carries only the control connection. The client then
//! opens data connections straight to the server's passive port, because it connects to the
//! control connection's peer address, 127.0.0.1, which proxy and server share.

#![allow(dead_code, unreachable_pub)]

pub mod proxy;
pub mod scripted;
