//! Outputs: the encoder, the media hub that fans packets out, the embedded RTMP server and
//! the pushed destinations.

pub mod destination;
pub mod encoder;
pub mod flv;
pub mod hub;
pub mod relay;
pub mod rtmp_server;
