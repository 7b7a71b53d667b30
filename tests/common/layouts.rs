//! Test layouts for the compiled-copy tests (tests/compiled.rs,
//! tests/hostile_23.rs).

/// Layouts of ASCII and short lines for `lang`, so a part is 7bit until a
/// copy's values make it otherwise (issue 17's pre-encoded parts). Use the
/// returned directory as the templates directory.
pub fn ascii_layouts(lang: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let lang_dir = dir.path().join(lang);
    std::fs::create_dir_all(&lang_dir).unwrap();
    std::fs::write(
        lang_dir.join("newsletter.txt.hbs"),
        "{{body}}\n\n-- \n{{list.name}}\nTo {{email}}:\n{{unsubscribe_url}}\n",
    )
    .unwrap();
    std::fs::write(
        lang_dir.join("newsletter.html.hbs"),
        "<html><head><title>{{subject}}</title></head>\n<body>\n<p>{{preheader}}</p>\n{{body}}\n<p>{{unsubscribe_url}}</p>\n</body></html>\n",
    )
    .unwrap();
    dir
}

/// The list the compiled-copy tests use: public, in `lang`, with two
/// declared attributes.
pub fn local_list(lang: &str) -> utskick::daemon::lists::List {
    utskick::daemon::lists::List::parse(
        "local",
        &format!(
            "name = \"Local finance\"\naddress = \"local\"\nlanguage = \"{lang}\"\n\
             public = true\nattributes = [\"organisation\", \"region\"]\n"
        ),
    )
    .unwrap()
}
