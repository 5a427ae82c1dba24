//! The web page in a real browser: headless Chromium (Debian's) loads the pages of a running
//! `edgevit run` (BlazeFace and the face descriptor on two reference photos), the live view
//! shows the frame with the faces drawn, the gallery shows each identity's thumbnail, and a
//! name typed into the rename form is shown and stored. The screenshots are the README's:
//! they are written to `$EDGEVIT_SCREENSHOT_DIR` (else target/web-screenshots);
//! `EDGEVIT_SCREENSHOT_DIR=docs/pictures cargo test --test web_browser` refreshes them.

mod common;

use common::webdriver::Browser;
use std::path::PathBuf;
use std::time::Duration;

fn screenshots() -> PathBuf {
    let dir = std::env::var_os("EDGEVIT_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::repo().join("target/web-screenshots"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn save(name: &str, png: &[u8]) {
    let picture = image::load_from_memory(png).unwrap();
    assert!(picture.width() >= 800 && picture.height() >= 600);
    let path = screenshots().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

#[test]
fn a_browser_sees_the_camera_and_names_a_face() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut run, address, config) = common::web::door_running(tmp.path());
    run.wait_for(
        address,
        "/api/gallery",
        &[],
        Duration::from_secs(120),
        |a| {
            a.status == 200
                && a.json().as_array().is_some_and(|all| {
                    all.len() >= 2 && all.iter().all(|i| i["thumbnails"].as_u64() >= Some(2))
                })
        },
    );
    let browser = Browser::start(1280, 900);

    // The live view: the snapshot arrives, is refreshed, and the table lists the face.
    browser.open(&format!("http://{address}/"));
    let size = browser.wait_for(
        "const i = document.querySelector('img.live'); \
         return i && i.complete && i.naturalWidth > 0 && [i.naturalWidth, i.naturalHeight];",
        Duration::from_secs(20),
    );
    eprintln!("live frame: {size}");
    assert!(
        size[0] == 512 && (size[1] == 512 || size[1] == 600),
        "{size}"
    );
    let first = browser.script("return document.querySelector('img.live').src;");
    browser.wait_for(
        &format!("return document.querySelector('img.live').src !== {first} && document.querySelector('img.live').complete;"),
        Duration::from_secs(20),
    );
    let row = browser.wait_for(
        "const r = document.querySelector('[data-found=\"door\"] tbody tr'); \
         return r && r.textContent.includes('face') && r.textContent;",
        Duration::from_secs(20),
    );
    eprintln!("live table row: {row}");
    assert!(row.as_str().unwrap().contains("id-00000"), "{row}");
    let stats =
        browser.script("return document.querySelector('[data-stats=\"door\"]').textContent;");
    assert!(stats.as_str().unwrap().contains("infer"), "{stats}");
    save("web-live.png", &browser.screenshot());

    // The gallery: both identities, each with its thumbnails loaded.
    browser.open(&format!("http://{address}/gallery"));
    let widths = browser.try_wait_for(
        "const t = [...document.querySelectorAll('article.identity img.thumbnail')]; \
         return t.length >= 4 && t.every(i => i.complete && i.naturalWidth > 0) && t.map(i => i.naturalWidth);",
        Duration::from_secs(20),
    );
    let Some(widths) = widths else {
        let state = browser.script(
            "return [...document.querySelectorAll('img')].map(i => [i.src, i.complete, i.naturalWidth]);",
        );
        panic!(
            "a thumbnail never loaded (src, complete, width): {state}\n{}",
            run.log()
        );
    };
    eprintln!("thumbnail widths: {widths}");
    let names = browser.script(
        "return [...document.querySelectorAll('article.identity')].map(a => a.id + ' ' + a.querySelector('.name').textContent);",
    );
    assert_eq!(
        names,
        serde_json::json!(["id-000001 unnamed", "id-000002 unnamed"])
    );

    // Naming the first through its form: the page says so and shows the name.
    browser.type_into(
        "article#id-000001 form.rename input[name=name]",
        "Eileen Collins",
    );
    browser.click("article#id-000001 form.rename button");
    let message = browser.wait_for(
        "const m = document.getElementById('message'); return m && m.textContent;",
        Duration::from_secs(20),
    );
    assert_eq!(message, "done: id-000001 renamed");
    let shown =
        browser.script("return document.querySelector('article#id-000001 .name').textContent;");
    assert_eq!(shown, "Eileen Collins");
    save("web-gallery.png", &browser.screenshot());
    drop(browser);

    let listed = common::gallery_list(&config);
    assert_eq!(listed[0]["id"], "id-000001");
    assert_eq!(listed[0]["name"], "Eileen Collins", "{listed:?}");
}
