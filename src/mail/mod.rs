//! Mail coming in: the SMTP/LMTP listener and the pure readers that tell
//! what a message is (automated or not, a bounce, the reply's own text).

pub mod automated;
pub mod bounce;
pub mod bounce_words;
pub mod html_text;
pub mod inject;
pub mod listener;
pub mod message;
pub mod reply_text;
pub mod router;
pub mod words;
