//! Fuzz body: `VaultPath` parsing. Whatever the input, an accepted path names something
//! strictly inside the vault (only normal components, none empty, `.`, `..`, absolute or
//! with a separator or control character), within the length limits, and is stable:
//! parsing its own text gives it back, and its parent, ancestors and join agree with it.

use std::path::{Component, Path};

use coffer::vault::path::{MAX_NAME_BYTES, MAX_PATH_BYTES, VaultPath, fold_name};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = fold_name(text);
    if let Ok(Some(dir)) = VaultPath::parse_dir(text) {
        check(&dir);
    }
    let Ok(path) = VaultPath::parse(text) else {
        return;
    };
    check(&path);
}

fn check(path: &VaultPath) {
    let text = path.as_str();
    assert!(
        !text.is_empty() && text.len() <= MAX_PATH_BYTES,
        "{path:?}: length"
    );
    assert_eq!(
        VaultPath::parse(text).as_ref(),
        Ok(path),
        "{path:?}: not stable"
    );
    for component in Path::new(text).components() {
        assert!(
            matches!(component, Component::Normal(_)),
            "{path:?}: {component:?}"
        );
    }
    for name in path.components() {
        assert!(
            !name.is_empty() && name != "." && name != "..",
            "{path:?}: component {name:?}"
        );
        assert!(name.len() <= MAX_NAME_BYTES, "{path:?}: component too long");
        assert!(
            !name
                .chars()
                .any(|c| c.is_control() || c == '\\' || c == ':'),
            "{path:?}: separator or control character in {name:?}"
        );
    }
    let parent = path.parent();
    assert_eq!(
        parent.as_ref().map_or("", |p| p.as_str()),
        path.parent_str()
    );
    if let Some(parent) = &parent {
        assert!(
            path.starts_with(parent) && !parent.starts_with(path),
            "{path:?}: parent"
        );
        assert_eq!(
            parent.join(path.file_name()).as_ref(),
            Ok(path),
            "{path:?}: join"
        );
    }
    let ancestors = path.ancestors();
    assert_eq!(
        ancestors.len(),
        path.components().count() - 1,
        "{path:?}: ancestors"
    );
    assert_eq!(ancestors.last(), parent.as_ref(), "{path:?}: last ancestor");
    assert_eq!(path.fold_key(), fold_name(path.file_name()));
}
