/* wanwu 万物 — the Library view (`wanwu serve --library`).
 *
 * Shown at #library when the server has a catalogue (GET /api/v1/library/stats answers).
 * A search box (suggestions from class and group names, en/zh), group facets with counts,
 * a grid of thumbnails with "load more" paging, and a dialog with the photo larger and its
 * tags, "Similar photos" from it (GET /similar/{id}) and a Duplicates review (GET /duplicates:
 * exact copies and near-duplicates, the suggested keeper marked), and People (GET /people: each
 * person as a face crop with name and counts; a click shows their photos, GET /people/{id},
 * with a box to name them, POST /people/{id}/name). Images are fetched with the API key (when
 * there is one) and shown from blob: URLs.
 * Requests, the key dialog and the language come from app.js (window.WANWU_UI).
 */
(() => {
  "use strict";

  const UI = window.WANWU_UI;
  if (!UI) return;
  const API = "/api/v1/library";
  const PAGE = 48;
  const TEXT = {
    en: {
      "tab.classify": "Classify", "tab.library": "Library",
      "search.placeholder": "Search your photos: dog, 狗, beach…", "search.go": "Search",
      "facets.label": "Groups", "facets.all": "All photos",
      "grid.more": "Load more", "dialog.close": "Close",
      "status.count": "{n} photos", "status.count.one": "1 photo", "status.match": "{n} photos match “{q}”",
      "status.match.one": "1 photo matches “{q}”", "status.none": "No photo matches “{q}”.",
      "status.empty": "The catalogue is empty: run `wanwu index` on a photo folder.",
      "status.loading": "Loading…", "tag.user": "your tag", "tag.keyword": "your keyword",
      "place": "{lat}° {ns}, {lon}° {ew}", "place.N": "N", "place.S": "S", "place.E": "E", "place.W": "W",
      "dialog.prev": "‹ Previous", "dialog.next": "Next ›", "tag.add": "Add",
      "tag.addPlaceholder": "Add a tag: dog, 海滩, holiday…", "tag.remove": "Remove the tag {label}",
      "tag.saved": "Saved: {message}",
      "dialog.similar": "Similar photos", "dup.open": "Duplicates", "status.similar": "Photos like {name}",
      "dup.exact": "Exact copies", "dup.near": "Near-duplicates", "dup.keep": "keep",
      "status.dups": "{e} groups of exact copies, {n} of near-duplicates; wanwu deletes nothing",
      "status.nodups": "No duplicates found.",
      "people.open": "People", "people.counts": "{f} faces · {p} photos",
      "status.people": "{n} people; {w} faces not grouped yet", "status.nopeople": "No faces found yet.",
      "status.person": "Photos of {name}", "person.namePlaceholder": "Name this person: 奶奶, Alex…",
      "person.save": "Save", "person.saved": "Named {name}: search finds their photos by it",
    },
    zh: {
      "tab.classify": "识别", "tab.library": "相册",
      "search.placeholder": "搜索照片：狗、dog、海滩……", "search.go": "搜索",
      "facets.label": "类别", "facets.all": "全部照片",
      "grid.more": "加载更多", "dialog.close": "关闭",
      "status.count": "{n} 张照片", "status.match": "{n} 张照片匹配“{q}”",
      "status.none": "没有照片匹配“{q}”。",
      "status.empty": "相册为空：请先对照片文件夹运行 `wanwu index`。",
      "status.loading": "加载中…", "tag.user": "你的标签", "tag.keyword": "你的关键词",
      "place": "{ns} {lat}°，{ew} {lon}°", "place.N": "北纬", "place.S": "南纬", "place.E": "东经", "place.W": "西经",
      "dialog.prev": "‹ 上一张", "dialog.next": "下一张 ›", "tag.add": "添加",
      "tag.addPlaceholder": "添加标签：狗、beach、旅行……", "tag.remove": "删除标签“{label}”",
      "tag.saved": "已保存：{message}",
      "dialog.similar": "相似照片", "dup.open": "重复照片", "status.similar": "与 {name} 相似的照片",
      "dup.exact": "完全相同", "dup.near": "近似重复", "dup.keep": "保留",
      "status.dups": "{e} 组完全相同，{n} 组近似重复；万物不会删除任何照片",
      "status.nodups": "没有找到重复照片。",
      "people.open": "人物", "people.counts": "{f} 张人脸 · {p} 张照片",
      "status.people": "{n} 个人物；{w} 张人脸尚未归组", "status.nopeople": "还没有找到人脸。",
      "status.person": "{name} 的照片", "person.namePlaceholder": "给这个人起名：奶奶、Alex……",
      "person.save": "保存", "person.saved": "已命名为 {name}：可以用这个名字搜索其照片",
    },
  };
  const $ = (id) => document.getElementById(id);
  const els = {
    tabs: $("view-tabs"), tabClassify: $("tab-classify"), tabLibrary: $("tab-library"),
    classifyView: $("main"), view: $("library-view"), form: $("lib-search"), q: $("lib-q"),
    suggestions: $("lib-suggestions"), facets: $("lib-facets"), status: $("lib-status"), grid: $("lib-grid"),
    more: $("lib-more"), dialog: $("lib-dialog"), dialogImg: $("lib-dialog-img"), dialogTitle: $("lib-dialog-title"),
    dialogMeta: $("lib-dialog-meta"), dialogTags: $("lib-dialog-tags"), dialogClose: $("lib-dialog-close"),
    prev: $("lib-prev"), next: $("lib-next"), tagForm: $("lib-tag-form"), tagInput: $("lib-tag-input"),
    tagStatus: $("lib-tag-status"),
    dialogSimilar: $("lib-dialog-similar"), dups: $("lib-dups"),
    people: $("lib-people"), personForm: $("lib-person-form"), personName: $("lib-person-name"),
  };
  const h = UI.h;
  let lang = UI.lang();
  const state = { query: "", total: 0, items: [], groups: [], photos: 0, available: false, error: null, loading: false };
  let current = null; // the photo open in the dialog
  let objectUrls = [];
  let generation = 0; // a newer search makes older answers stale

  function t(key, vars) {
    const dict = TEXT[lang] || TEXT.en;
    if (vars && vars.n === 1 && `${key}.one` in dict) key = `${key}.one`;
    const s = dict[key] || TEXT.en[key] || key;
    return vars ? s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : s;
  }

  function translateStatic() {
    for (const el of document.querySelectorAll("[data-lib-i18n]")) el.textContent = t(el.dataset.libI18n);
    for (const el of document.querySelectorAll("[data-lib-i18n-placeholder]")) {
      el.placeholder = t(el.dataset.libI18nPlaceholder);
      el.setAttribute("aria-label", el.placeholder);
    }
    for (const el of document.querySelectorAll("[data-lib-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.libI18nAria));
  }

  /* ---------- images with the API key, as blob: URLs ---------- */
  async function blobUrl(url) {
    const key = UI.getKey();
    const res = await fetch(url, { headers: key ? { Authorization: `Bearer ${key}` } : {}, credentials: "same-origin" });
    if (!res.ok) throw new Error(String(res.status));
    const u = URL.createObjectURL(await res.blob());
    objectUrls.push(u);
    return u;
  }

  function forgetImages() {
    for (const u of objectUrls) URL.revokeObjectURL(u);
    objectUrls = [];
  }

  /* ---------- views ---------- */
  function showView() {
    const lib = state.available && location.hash === "#library";
    els.view.hidden = !lib;
    els.classifyView.hidden = lib;
    els.tabLibrary.classList.toggle("is-active", lib);
    els.tabClassify.classList.toggle("is-active", !lib);
    els.tabLibrary.setAttribute("aria-current", lib ? "page" : "false");
    els.tabClassify.setAttribute("aria-current", lib ? "false" : "page");
    if (lib && !state.items.length && !state.loading) search(state.query);
  }

  async function loadStats() {
    if (!state.available) {
      const probe = await UI.apiRequest(API);  // {"enabled": false} on a server without --library
      if (!probe.ok || !probe.data.enabled) return false;
    }
    const r = await UI.apiRequest(`${API}/stats?lang=${lang}`);
    if (!r.ok) return false;
    state.available = true;
    state.groups = r.data.groups || [];
    state.photos = r.data.photos - r.data.failed;
    els.tabs.hidden = false;
    renderFacets();
    return true;
  }

  function renderFacets() {
    const chip = (label, query, count) => h("button", {
      type: "button", class: "lib-facet" + (state.query === query ? " is-active" : ""),
      "aria-pressed": state.query === query ? "true" : "false",
      onclick: () => { els.q.value = query; search(query); },
    }, label, count != null ? h("span", { class: "lib-facet-count", text: String(count) }) : null);
    els.facets.replaceChildren(chip(t("facets.all"), "", state.photos),
      ...state.groups.map((g) => chip(g.label, g.label, g.count)));
  }

  function renderStatus() {
    let text;
    if (state.error) text = UI.errorText(state.error);
    else if (state.loading && !state.items.length) text = t("status.loading");
    else if (!state.query) text = state.total ? t("status.count", { n: state.total }) : t("status.empty");
    else text = state.total ? t("status.match", { n: state.total, q: state.query }) : t("status.none", { q: state.query });
    els.status.textContent = text;
    els.status.classList.toggle("is-error", !!state.error);
    els.more.hidden = state.items.length >= state.total || !!state.error;
  }

  function tagText(tag) {
    return tag.score == null ? `${tag.label} · ${t("tag.user")}` : `${tag.label} ${(tag.score * 100).toFixed(0)}%`;
  }

  function card(item, note) {
    item.tags = item.tags || [];
    const img = h("img", { class: "lib-thumb", alt: item.tags.length ? item.tags[0].label : "", loading: "lazy" });
    blobUrl(item.thumbnail_url).then((u) => { img.src = u; }).catch(() => img.classList.add("is-broken"));
    const name = item.path.split(/[\\/]/).pop();
    const top = item.tags[0];
    return h("li", { class: "lib-card" },
      h("button", { type: "button", class: "lib-open", title: item.path, onclick: () => openPhoto(item) },
        img,
        h("span", { class: "lib-caption" },
          h("span", { class: "lib-label", text: note || (top ? tagText(top) : name) }),
          h("span", { class: "lib-name", text: name }))));
  }

  /* ---------- similar photos and duplicates (views of the same grid) ---------- */
  async function showList(url, render) {
    const gen = ++generation;
    els.personForm.hidden = true;
    forgetImages();
    state.items = [];
    state.error = null;
    els.grid.replaceChildren();
    els.more.hidden = true;
    els.status.textContent = t("status.loading");
    const r = await UI.apiRequest(url);
    if (gen !== generation) return false;
    if (!r.ok) {
      els.status.textContent = UI.errorText(r.error);
      els.status.classList.add("is-error");
      return false;
    }
    els.status.classList.remove("is-error");
    els.status.textContent = render(r.data);
    return true;
  }

  function showSimilar(item) {
    const name = item.path.split(/[\\/]/).pop();
    showList(`${API}/similar/${item.id}?limit=${PAGE}&lang=${lang}`, (data) => {
      els.grid.append(...data.items.map((i) => card(i, `${(i.similarity * 100).toFixed(0)}%`)));
      return t("status.similar", { name });
    });
  }

  function showDuplicates() {
    showList(`${API}/duplicates`, (data) => {
      for (const g of [...data.exact, ...data.near]) {
        const head = `${t(g.kind === "exact" ? "dup.exact" : "dup.near")} (${g.photos.length}) · ${g.reason}`;
        els.grid.append(h("li", { class: "lib-dup-head", text: head }),
          ...g.photos.map((p) => {
            const note = (p.id === g.keeper ? `✓ ${t("dup.keep")} · ` : "") + (p.width ? `${p.width}×${p.height}` : "")
              + (p.similarity != null ? ` · ${(p.similarity * 100).toFixed(0)}%` : "");
            const c = card(p, note);
            if (p.id === g.keeper) c.classList.add("is-keeper");
            return c;
          }));
      }
      const e = data.exact.length, n = data.near.length;
      return e + n ? t("status.dups", { e, n }) : t("status.nodups");
    });
  }

  /* ---------- people: persons as face crops; a person's photos, named from here ---------- */
  let person = null; // the person whose photos are shown

  const who = (p) => p.name || `#${p.id}`;

  function personCard(p) {
    const img = h("img", { class: "lib-thumb", alt: who(p), loading: "lazy" });
    if (p.sample_face_url) blobUrl(p.sample_face_url).then((u) => { img.src = u; }).catch(() => img.classList.add("is-broken"));
    return h("li", { class: "lib-card lib-person" },
      h("button", { type: "button", class: "lib-open", onclick: () => showPerson(p) },
        img,
        h("span", { class: "lib-caption" },
          h("span", { class: "lib-label", text: who(p) }),
          h("span", { class: "lib-name", text: t("people.counts", { f: p.faces, p: p.photos }) }))));
  }

  function showPeople() {
    showList(`${API}/people`, (data) => {
      els.grid.append(...data.people.map(personCard));
      if (!data.people.length && !data.waiting.faces) return data.hint ? `${t("status.nopeople")} (${data.hint})` : t("status.nopeople");
      return t("status.people", { n: data.people.length, w: data.waiting.faces });
    });
  }

  async function showPerson(p) {
    const shown = await showList(`${API}/people/${p.id}?limit=200&lang=${lang}`, (data) => {
      person = data.person;
      els.grid.append(...data.items.map((i) => card(i)));
      return t("status.person", { name: who(data.person) });
    });
    if (shown) {
      els.personName.value = person.name || "";
      els.personForm.hidden = false;
    }
  }

  async function namePerson(name) {
    if (!person) return;
    const r = await UI.apiRequest(`${API}/people/${person.id}/name`, {
      method: "POST", body: new Blob([JSON.stringify({ name })], { type: "application/json" }),
    });
    if (!r.ok) {
      els.status.textContent = UI.errorText(r.error);
      els.status.classList.add("is-error");
      return;
    }
    person = r.data.person;
    els.status.classList.remove("is-error");
    els.status.textContent = `${t("status.person", { name: who(person) })} · ${t("person.saved", { name: person.name })}`;
  }

  async function search(query, append) {
    const gen = append ? generation : ++generation;
    els.personForm.hidden = true;
    state.query = query.trim();
    state.loading = true;
    state.error = null;
    if (!append) {
      forgetImages();
      state.items = [];
      els.grid.replaceChildren();
    }
    renderFacets();
    renderStatus();
    const params = new URLSearchParams({ q: state.query, limit: String(PAGE), offset: String(state.items.length), lang });
    const r = await UI.apiRequest(`${API}/search?${params}`);
    if (gen !== generation) return;
    state.loading = false;
    if (!r.ok) {
      state.error = r.error;
    } else {
      state.total = r.data.total;
      state.items.push(...r.data.items);
      els.grid.append(...r.data.items.map(card));
    }
    renderStatus();
  }

  let shown = null; // the item in the photo view

  async function openPhoto(item) {
    const dlg = els.dialog;
    shown = item;
    els.tagStatus.textContent = "";
    renderStep();
    current = item;
    els.dialogTitle.textContent = item.path.split(/[\\/]/).pop();
    els.dialogMeta.textContent = [
      item.width && `${item.width}×${item.height}`, takenText(item.taken), item.camera, placeText(item), item.path,
    ].filter(Boolean).join(" · ");
    renderTags(item);
    els.dialogImg.removeAttribute("src");
    els.dialogImg.alt = item.tags.length ? item.tags[0].label : "";
    if (typeof dlg.showModal === "function") { if (!dlg.open) dlg.showModal(); } else dlg.setAttribute("open", "");
    try { els.dialogImg.src = await blobUrl(item.image_url); } catch { els.dialogImg.src = await blobUrl(item.thumbnail_url).catch(() => ""); }
  }

  /* When and where: EXIF's date (no zone: the camera's wall clock, shown as such) in the page's
     language, and the GPS position rounded to 4 decimals (about 10 m), as text, no map. */
  function takenText(iso) {
    if (!iso) return "";
    const when = new Date(iso);
    if (Number.isNaN(when.getTime())) return iso;
    return new Intl.DateTimeFormat(lang === "zh" ? "zh-CN" : "en", { dateStyle: "long", timeStyle: "short" }).format(when);
  }

  function placeText(item) {
    if (item.latitude == null || item.longitude == null) return "";
    return t("place", {
      lat: Math.abs(item.latitude).toFixed(4), ns: t(item.latitude < 0 ? "place.S" : "place.N"),
      lon: Math.abs(item.longitude).toFixed(4), ew: t(item.longitude < 0 ? "place.W" : "place.E"),
    });
  }

  /* The model's tag with its score; the user's (wanwu tag) and the keywords other apps wrote
     (tag.source: a sidecar, the photo's own XMP/IPTC) marked as theirs; only wanwu's can be removed here. */
  function renderTags(item) {
    els.dialogTags.replaceChildren(...item.tags.map((tag) => h("li", { class: tag.user ? "is-user" : "", title: tag.hierarchy || null },
      h("span", { class: "lib-tag-label", text: tag.label }),
      h("span", {
        class: "lib-tag-score",
        text: tag.source ? t("tag.keyword") : tag.score == null ? t("tag.user") : `${(tag.score * 100).toFixed(1)}%`,
      }),
      tag.source ? null : h("button", {
        type: "button", class: "lib-tag-remove", text: "×", title: t("tag.remove", { label: tag.label }),
        "aria-label": t("tag.remove", { label: tag.label }), onclick: () => editTags({ remove: [tag.wnid || tag.label] }),
      }))));
  }

  /* ---------- previous / next: through the photos found, loading more at the end ---------- */
  function renderStep() {
    const i = state.items.indexOf(shown);
    els.prev.disabled = i <= 0;
    els.next.disabled = i < 0 || (i >= state.items.length - 1 && state.items.length >= state.total);
  }

  async function step(by) {
    let i = state.items.indexOf(shown);
    if (i < 0) return;
    if (i + by >= state.items.length && state.items.length < state.total && !state.loading) {
      await search(state.query, true);
      i = state.items.indexOf(shown);
    }
    const next = state.items[i + by];
    if (next) openPhoto(next);
  }

  /* ---------- the user's tags: what `wanwu tag` does, through the API ---------- */
  async function editTags(edit) {
    const item = shown;
    if (!item) return;
    const r = await UI.apiRequest(`${API}/photos/${item.id}/tags?lang=${lang}`, {
      method: "POST", body: new Blob([JSON.stringify(edit)], { type: "application/json" }),
    });
    if (!r.ok) {
      els.tagStatus.textContent = UI.errorText(r.error);
      els.tagStatus.classList.add("is-error");
      return;
    }
    els.tagStatus.classList.remove("is-error");
    els.tagStatus.textContent = t("tag.saved", { message: r.data.message });
    if (r.data.photo) {
      item.tags = r.data.photo.tags;
      if (shown === item) renderTags(item);
    }
  }

  function closePhoto() {
    if (els.dialog.open) { if (typeof els.dialog.close === "function") els.dialog.close(); else els.dialog.removeAttribute("open"); }
  }

  /* ---------- suggestions ---------- */
  let suggestTimer = null;
  els.q.addEventListener("input", () => {
    clearTimeout(suggestTimer);
    const q = els.q.value.trim();
    if (!q) { els.suggestions.replaceChildren(); return; }
    suggestTimer = setTimeout(async () => {
      const r = await UI.apiRequest(`${API}/suggest?${new URLSearchParams({ q, limit: "12" })}`);
      if (r.ok && els.q.value.trim() === q) {
        els.suggestions.replaceChildren(...r.data.suggestions.map((s) => h("option", { value: s })));
      }
    }, 150);
  });

  els.form.addEventListener("submit", (e) => { e.preventDefault(); search(els.q.value); });
  els.more.addEventListener("click", () => search(state.query, true));
  els.dialogClose.addEventListener("click", closePhoto);
  els.prev.addEventListener("click", () => step(-1));
  els.next.addEventListener("click", () => step(1));
  els.dialog.addEventListener("keydown", (e) => {
    if (e.target === els.tagInput) return;
    if (e.key === "ArrowLeft") step(-1);
    else if (e.key === "ArrowRight") step(1);
  });
  els.tagForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = els.tagInput.value.trim();
    if (!name) return;
    els.tagInput.value = "";
    editTags({ add: [name] });
  });
  els.dialogSimilar.addEventListener("click", () => { closePhoto(); if (current) showSimilar(current); });
  els.dups.addEventListener("click", showDuplicates);
  els.people.addEventListener("click", showPeople);
  els.personForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = els.personName.value.trim();
    if (name) namePerson(name);
  });
  els.dialog.addEventListener("click", (e) => { if (e.target === els.dialog) closePhoto(); });
  window.addEventListener("hashchange", showView);

  UI.onLanguage((next) => {
    const changed = next !== lang;
    lang = next;
    translateStatic();
    if (changed && state.available) {
      loadStats();
      if (location.hash === "#library") search(state.query);
    } else {
      renderStatus();
    }
  });

  loadStats().then(showView);
})();
