//! The `watch:` section of project files: which pushes make releases.

use gantry_engine::project_file;

#[test]
fn watch_rules_are_checked_at_load() {
    let yaml = "project: shop
components:
  api: registry.example/shop/api
watch:
  api: {tags: 'v*', semver: '>=1'}
  worker: {tags: 'v*'}
  web: {semver: 'one point two'}
environments:
  prod:
    targets:
      api: {repository: registry.example/shop/api}
";
    let errors = project_file::parse("shop.yaml", yaml)
        .unwrap_err()
        .to_string();
    for expected in [
        "shop.yaml:5:8: watch.api: give exactly one of tags",
        "shop.yaml:6:3: watch: unknown component \"worker\" (components: api)",
        "shop.yaml:7:3: watch: unknown component \"web\"",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
}
