//! Mail going out, as bytes: system mails from templates, and newsletters
//! from Markdown (authoring, HTML, plain text, MIME).

pub mod newsletter;
pub mod system;
pub mod templates;
