//! Mail going out, as bytes: system mails from templates, and newsletters
//! from Markdown (authoring, HTML, plain text, MIME).

pub mod attachment;
pub mod compiled;
pub mod dkim;
pub mod error;
pub mod markdown;
pub mod mime;
pub mod newsletter;
pub mod plaintext;
pub mod post;
pub mod post_fields;
pub mod sanitize;
pub mod system;
pub mod templates;
