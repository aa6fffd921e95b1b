/* wanwu 万物 — browser UI.
 *
 * Plain ES2020, no build step, CSP-friendly (no inline code or styles; the
 * DOM is built with createElement and dynamic sizes are set through CSSOM).
 *
 * Flow: files (chooser / drop / paste) -> one card per file -> a small queue
 * sends one POST /api/v1/classify per file, at most MAX_CONCURRENT at a time
 * -> each card re-renders when its result (or error) arrives.
 * A 401 opens the API-key dialog once; waiting requests retry with the key.
 */
(() => {
  "use strict";

  const API = "/api/v1";
  const MAX_CONCURRENT = 4;
  const KEY_STORAGE = "wanwu.apiKey";   // sessionStorage
  const LANG_STORAGE = "wanwu.lang";    // localStorage
  const I18N = window.WANWU_I18N || { en: {} };

  const $ = (id) => document.getElementById(id);
  const isTouch = () => !!(window.matchMedia && window.matchMedia("(hover: none) and (pointer: coarse)").matches);
  // Errors that the same bytes can never get past: no Retry button for them.
  const PERMANENT_ERRORS = new Set(["not_an_image", "unsupported_format", "corrupt_image", "truncated_image",
    "empty_image", "too_many_pixels", "payload_too_large", "unsupported_media_type"]);
  const els = {
    langToggle: $("lang-toggle"),
    modelSelect: $("model-select"),
    modelDetails: $("model-details"),
    modelStatus: $("model-status"),
    topkSelect: $("topk-select"),
    clearButton: $("clear-button"),
    dropzone: $("dropzone"),
    dropzoneHint: $("dropzone-hint"),
    dropzoneTitle: document.querySelector(".dropzone-title"),
    fileInput: $("file-input"),
    summary: $("summary"),
    emptyState: $("empty-state"),
    results: $("results"),
    engineInfo: $("engine-info"),
    authDialog: $("auth-dialog"),
    authForm: $("auth-form"),
    authMessage: $("auth-message"),
    authKey: $("auth-key"),
    authCancel: $("auth-cancel"),
  };

  /* ------------------------------------------------------------------ */
  /* Small helpers                                                       */
  /* ------------------------------------------------------------------ */

  // Build an element: h("div", {class: "x", text: "hi", onclick: fn}, ...children)
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "text") el.textContent = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c != null && c !== false) el.append(c);
    }
    return el;
  }

  // Inline SVG icon from a list of path "d" strings (stroke icons, 24x24).
  function icon(paths, cls) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", cls || "icon");
    for (const d of paths) {
      const p = document.createElementNS(NS, "path");
      p.setAttribute("d", d);
      p.setAttribute("fill", "none");
      p.setAttribute("stroke", "currentColor");
      p.setAttribute("stroke-width", "2");
      p.setAttribute("stroke-linecap", "round");
      p.setAttribute("stroke-linejoin", "round");
      svg.append(p);
    }
    return svg;
  }
  const ICONS = {
    close: ["M6 6l12 12M18 6L6 18"],
    retry: ["M4 12a8 8 0 0 1 13.7-5.7L20 8", "M20 3v5h-5", "M20 12a8 8 0 0 1-13.7 5.7L4 16", "M4 21v-5h5"],
    alert: ["M12 8v5", "M12 16.5v.01", "M10.3 3.9 2.4 17.5A2 2 0 0 0 4.1 20.5h15.8a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z"],
    clock: ["M12 7v5l3 2", "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z"],
    frame: ["M4 8V5a1 1 0 0 1 1-1h3M16 4h3a1 1 0 0 1 1 1v3M20 16v3a1 1 0 0 1-1 1h-3M8 20H5a1 1 0 0 1-1-1v-3"],
  };

  const storage = {
    get(store, key) { try { return window[store].getItem(key); } catch { return null; } },
    set(store, key, val) { try { window[store].setItem(key, val); } catch { /* private mode */ } },
  };
  let memoryKey = null; // fallback when sessionStorage is unavailable
  const getKey = () => storage.get("sessionStorage", KEY_STORAGE) || memoryKey;
  const setKey = (k) => { memoryKey = k; storage.set("sessionStorage", KEY_STORAGE, k); };

  /* ------------------------------------------------------------------ */
  /* i18n                                                                */
  /* ------------------------------------------------------------------ */

  function initialLanguage() {
    const saved = storage.get("localStorage", LANG_STORAGE);
    if (saved === "en" || saved === "zh") return saved;
    return /^zh\b/i.test(navigator.language || "") ? "zh" : "en";
  }
  let lang = initialLanguage();

  // t("card.time", {ms: 12}) -> "12 ms"; uses "<key>.one" (if defined) when vars.n === 1.
  function t(key, vars) {
    const dict = I18N[lang] || {};
    if (vars && vars.n === 1 && `${key}.one` in dict) key = `${key}.one`;
    const s = key in dict ? dict[key] : (I18N.en && I18N.en[key]) || key;
    return vars ? s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m)) : s;
  }

  // Translate the static markup (data-i18n*, <html lang>, title) and re-render dynamic parts.
  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t("doc.title");
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
    for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);

    // The switch shows both languages ("EN / 中文" and a globe): recognisable without CJK fonts.
    for (const opt of els.langToggle.querySelectorAll(".lang-opt")) opt.classList.toggle("is-active", opt.dataset.lang === lang);

    // Touch screens: no drop, no Ctrl+V; the file input (accept="image/*") offers the camera.
    if (isTouch()) {
      els.dropzoneTitle.textContent = t("drop.titleTouch");
      els.dropzoneHint.hidden = true;
    } else {
      // "or click … paste with {paste}" — {paste} becomes <kbd> keys, kept on one line.
      const isMac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || "");
      const [before, after] = t("drop.hint").split("{paste}");
      els.dropzoneHint.replaceChildren(before || "", h("span", { class: "nowrap" },
        h("kbd", { text: isMac ? "⌘" : "Ctrl" }), "+", h("kbd", { text: "V" })), after || "");
      els.dropzoneHint.hidden = false;
    }

    renderModels();
    if (authPromise) renderAuthMessage();
    for (const card of cards) renderCard(card, false);
    renderSummary();
    for (const fn of languageListeners) fn(lang);
  }
  const languageListeners = [];

  /* ------------------------------------------------------------------ */
  /* API access (auth + error normalization)                            */
  /* ------------------------------------------------------------------ */

  // Normalized error: {text} is a server message shown verbatim; otherwise {key, vars} is translated.
  function errorFromResponse(res, data) {
    const retryAfter = res.headers.get("Retry-After");
    const base = { status: res.status, retryAfter: retryAfter && /^\d+$/.test(retryAfter.trim()) ? +retryAfter : null };
    const e = data && data.error;
    if (e && typeof e === "object" && (e.message || e.code)) {
      return { ...base, text: String(e.message || e.code), code: e.code || null, requestId: e.request_id || null };
    }
    if (typeof e === "string") return { ...base, text: e };
    if (data && typeof data.detail === "string") return { ...base, text: data.detail };
    if (data && Array.isArray(data.detail)) {
      return { ...base, text: data.detail.map((d) => (d && d.msg) || String(d)).join("; ") };
    }
    return { ...base, key: "error.http", vars: { status: res.status, text: res.statusText || "" } };
  }

  function errorText(err) {
    if (!err) return "";
    let s = err.text != null ? err.text : t(err.key || "error.badResponse", err.vars).trim();
    if (err.retryAfter != null) s += " " + t("error.retryAfter", { s: err.retryAfter });
    if (err.requestId) s += ` (${t("error.requestId", { id: err.requestId })})`;
    return s;
  }

  // fetch + JSON + auth. `body` may be a function so that a retry builds a fresh FormData.
  // Resolves to {ok: true, data} or {ok: false, error}; rejects only on abort.
  async function apiRequest(url, { method = "GET", body, signal } = {}) {
    for (;;) {
      const key = getKey();
      // the page's language, not the browser's: error messages (and labels) come in it
      const headers = { Accept: "application/json", "Accept-Language": lang === "zh" ? "zh-CN" : "en" };
      if (key) headers.Authorization = `Bearer ${key}`;
      let res;
      try {
        res = await fetch(url, {
          method, headers, signal, credentials: "same-origin",
          body: typeof body === "function" ? body() : body,
        });
      } catch (e) {
        if (e && e.name === "AbortError") throw e;
        return { ok: false, error: { key: "error.network" } };
      }
      let data = null;
      if ((res.headers.get("Content-Type") || "").includes("json")) {
        try { data = await res.json(); } catch { data = null; }
      }
      if (res.status === 401) {
        if (getKey() !== key) continue;                      // key changed meanwhile: just retry
        if (await askForKey(key ? "wrong" : "needed")) continue;
      }
      if (res.ok) {
        return data && typeof data === "object"
          ? { ok: true, data }
          : { ok: false, error: { key: "error.badResponse" } };
      }
      return { ok: false, error: errorFromResponse(res, data) };
    }
  }

  /* ---------- API key dialog (shared by all requests that hit 401) ---------- */

  let authPromise = null;
  let authResolve = null;
  let authReason = "needed";

  function renderAuthMessage() {
    els.authMessage.textContent = t(authReason === "wrong" ? "auth.wrong" : "auth.needed");
    els.authMessage.classList.toggle("is-error", authReason === "wrong");
  }

  // Resolves true once the user entered a key, false if they cancelled.
  function askForKey(reason) {
    if (authPromise) return authPromise;
    authReason = reason;
    authPromise = new Promise((resolve) => { authResolve = resolve; });
    renderAuthMessage();
    els.authKey.value = "";
    const dlg = els.authDialog;
    if (typeof dlg.showModal === "function") { if (!dlg.open) dlg.showModal(); } else dlg.setAttribute("open", "");
    els.authKey.focus();
    return authPromise;
  }

  function finishAuth(ok) {
    if (!authPromise) return;
    const resolve = authResolve;
    authPromise = authResolve = null;
    const dlg = els.authDialog;
    if (dlg.open) { if (typeof dlg.close === "function") dlg.close(); else dlg.removeAttribute("open"); }
    resolve(ok);
    if (ok && modelsState === "error") loadModels();
  }

  els.authForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = els.authKey.value.trim();
    if (!key) { els.authKey.focus(); return; }
    setKey(key);
    finishAuth(true);
  });
  els.authCancel.addEventListener("click", () => finishAuth(false));
  els.authDialog.addEventListener("cancel", (e) => { e.preventDefault(); finishAuth(false); }); // Esc

  /* ------------------------------------------------------------------ */
  /* Models                                                              */
  /* ------------------------------------------------------------------ */

  let models = [];
  let modelsState = "loading"; // loading | ok | error
  let modelsError = null;
  let selectedModel = "";      // "" = let the server pick its default

  async function loadModels() {
    modelsState = "loading";
    renderModels();
    const r = await apiRequest(`${API}/models`);
    if (r.ok && Array.isArray(r.data.models)) {
      models = r.data.models;
      modelsState = "ok";
      const usable = models.filter((m) => m.available !== false);
      const keep = usable.find((m) => m.name === selectedModel);
      const def = usable.find((m) => m.name === r.data.default);
      selectedModel = (keep || def || usable[0] || { name: "" }).name;
    } else {
      modelsState = "error";
      modelsError = r.ok ? { key: "error.badResponse" } : r.error;
    }
    renderModels();
  }

  function renderModels() {
    const sel = els.modelSelect;
    const opts = [];
    if (modelsState === "loading") {
      opts.push(h("option", { value: "", text: t("model.loading") }));
    } else if (modelsState === "error" || !models.some((m) => m.available !== false)) {
      opts.push(h("option", { value: "", text: t("model.serverDefault") }));
    }
    if (modelsState === "ok") {
      for (const m of models) {
        const title = m.title || m.name;
        const unavailable = m.available === false;
        opts.push(h("option", {
          value: m.name,
          text: unavailable ? t("model.unavailable", { title }) : title,
          disabled: unavailable,
          title: unavailable ? m.reason || null : null,
        }));
      }
    }
    sel.replaceChildren(...opts);
    sel.value = selectedModel;
    if (sel.value !== selectedModel) sel.value = "";
    sel.disabled = modelsState === "loading";

    // Details line for the selected model.
    const m = models.find((x) => x.name === selectedModel);
    const parts = [];
    if (m) {
      if (m.top1 != null) parts.push(t("model.top1", { v: m.top1 }));
      if (m.params_m != null) parts.push(t("model.params", { v: m.params_m }));
      if (m.input_size != null) parts.push(t("model.input", { v: m.input_size }));
      if (m.size_mb != null) parts.push(t("model.size", { v: m.size_mb }));
    }
    // each part on one line ("18.8 MB" never breaks); the line breaks between parts
    els.modelDetails.replaceChildren(...parts.flatMap((p, i) => [i ? " · " : "", h("span", { class: "nowrap", text: p })]));
    els.modelDetails.hidden = parts.length === 0;

    // Notice: load error, or no usable model (show the first reason).
    let notice = "";
    if (modelsState === "error") notice = t("model.loadError", { message: errorText(modelsError) });
    else if (modelsState === "ok" && !models.some((m) => m.available !== false)) {
      const reason = models.find((x) => x.reason);
      notice = t("model.noneAvailable") + (reason ? " " + reason.reason : "");
    }
    els.modelStatus.replaceChildren(notice);
    if (modelsState === "error") {
      els.modelStatus.append(" ", h("button", {
        type: "button", class: "link-button", text: t("model.retry"), onclick: () => loadModels(),
      }));
    }
    els.modelStatus.hidden = !notice;
  }

  const modelTitle = (name) => {
    const m = models.find((x) => x.name === name);
    return (m && m.title) || name || "";
  };

  /* ------------------------------------------------------------------ */
  /* Cards + classification queue                                        */
  /* ------------------------------------------------------------------ */

  const cards = [];   // {file, name, url, el, body, state, result, meta, error, run, controller, removed}
  const queue = [];
  let active = 0;
  let nextPaste = 1;

  const topK = () => parseInt(els.topkSelect.value, 10) || 3;

  function addFiles(fileList) {
    const files = Array.from(fileList || []).filter(Boolean);
    if (!files.length) return;
    const frag = document.createDocumentFragment();
    for (const file of files) {
      const card = createCard(file);
      cards.push(card);
      frag.append(card.el);
    }
    els.results.prepend(frag);              // newest batch on top, in chosen order
    // bring the new cards into view (below the fold on a 1280x800 screen otherwise), and again
    // once the first one has its answer (it grows)
    scrollTarget = cards[cards.length - files.length];
    showCard(scrollTarget);
    for (const card of cards.slice(-files.length)) enqueue(card);
    renderSummary();
  }

  let scrollTarget = null;
  function showCard(card) {
    const reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    card.el.scrollIntoView({ block: "nearest", behavior: reduce ? "auto" : "smooth" });
  }

  function createCard(file) {
    const name = file.name || `pasted-image-${nextPaste++}.png`;
    const url = URL.createObjectURL(file);
    const thumb = h("div", { class: "thumb" });
    const img = h("img", { src: url, alt: name, decoding: "async" });
    // HEIC (iPhone photos) and the like: the browser cannot draw them, the server reads them; say so
    // instead of an empty frame (the placeholder is our choice over a server-made JPEG preview)
    const note = h("p", { class: "thumb-note", dataset: { i18n: "card.noPreview" }, text: t("card.noPreview") });
    img.addEventListener("error", () => thumb.classList.add("is-broken"), { once: true });
    thumb.append(img, icon(ICONS.frame, "thumb-fallback"), note);
    const body = h("div", { class: "card-body" });
    const el = h("article", { class: "result-card", dataset: { filename: name, state: "pending" } }, thumb, body);
    return { file, name, url, el, body, state: "pending", result: null, meta: null, error: null, run: 0, controller: null, removed: false,
      heat: { shown: false, state: "idle", data: null, error: null, canvas: null } };
  }

  // (Re)queue a card: cancels a request in flight for it and shows "recognizing…" right away.
  function enqueue(card) {
    card.run += 1;
    if (card.controller) card.controller.abort();
    card.state = "pending";
    card.result = card.error = null;
    resetHeat(card);
    renderCard(card, false);
    if (!queue.includes(card)) queue.push(card);
    pump();
  }

  function pump() {
    while (active < MAX_CONCURRENT && queue.length) {
      const card = queue.shift();
      active += 1;
      classify(card).finally(() => { active -= 1; pump(); });
    }
  }

  async function classify(card) {
    if (card.removed) return;
    const run = card.run;
    const controller = new AbortController();
    card.controller = controller;
    const params = new URLSearchParams({ top_k: String(topK()) });
    if (selectedModel) params.set("model", selectedModel);
    let r;
    try {
      r = await apiRequest(`${API}/classify?${params}`, {
        method: "POST",
        signal: controller.signal,
        body: () => { const fd = new FormData(); fd.append("file", card.file, card.name); return fd; },
      });
    } catch {
      return; // aborted (cleared, removed or re-run)
    } finally {
      if (card.controller === controller) card.controller = null;
    }
    if (card.removed || card.run !== run) return;

    const res = r.ok && Array.isArray(r.data.results) ? r.data.results[0] : null;
    if (r.ok && res && !res.error && Array.isArray(res.predictions)) {
      card.state = "done";
      card.result = res;
      card.meta = { model: r.data.model, engine: r.data.engine, precision: r.data.precision };
      renderEngine(card.meta);
    } else {
      card.state = "error";
      card.error = !r.ok ? r.error
        : res && res.error ? { text: String(res.error.message || res.error.code || res.error), code: res.error.code || null }
        : { key: "error.badResponse" };
    }
    renderCard(card, true);
    renderSummary();
    if (card === scrollTarget) { scrollTarget = null; showCard(card); }
  }

  function removeCard(card) {
    card.removed = true;
    if (card.controller) card.controller.abort();
    const qi = queue.indexOf(card);
    if (qi >= 0) queue.splice(qi, 1);
    const i = cards.indexOf(card);
    if (i >= 0) cards.splice(i, 1);
    card.el.remove();
    URL.revokeObjectURL(card.url);
  }

  function clearAll() {
    for (const card of cards.slice()) removeCard(card);
    renderSummary();
    els.dropzone.focus();
  }

  // Re-run everything (after changing the model or top-k).
  function rerunAll() {
    for (const card of cards) enqueue(card);
    renderSummary();
  }

  /* ---------- Explain: the class activation map over the thumbnail ---------- */

  // viridis, channel = sum_i c_i t^i: the same fit as src/wanwu/overlay.py (_VIRIDIS_POLY; a test checks)
  const VIRIDIS_POLY = [
    [0.274455, 0.107708, -0.327241, -4.59993, 6.20374, 4.75179, -5.43208],
    [0.00576796, 1.39647, 0.214814, -5.75824, 14.154, -13.7494, 4.64157],
    [0.332664, 1.38677, 0.0919769, -19.2918, 56.6563, -65.321, 26.2721],
  ];
  const HEAT_ALPHA = 0.55;    // colour over the photo inside the model's crop
  const OUTSIDE_ALPHA = 0.6;  // grey veil over what the model did not see

  const viridis = (v) => VIRIDIS_POLY.map((c) => {
    let y = 0;
    for (let i = c.length - 1; i >= 0; i--) y = y * v + c[i];
    return Math.max(0, Math.min(255, Math.round(y * 255)));
  });

  function resetHeat(card) {
    card.heat.shown = false;
    card.heat.state = "idle";
    card.heat.data = card.heat.error = null;
    if (card.heat.canvas) card.heat.canvas.hidden = true;
  }

  // The heatmap grid at its own resolution; CSS scales it over the thumbnail like the <img>.
  function drawHeat(card) {
    const ex = card.heat.data;
    const rows = ex.heatmap.length, cols = rows ? ex.heatmap[0].length : 0;
    if (!card.heat.canvas) {
      card.heat.canvas = h("canvas", { class: "heat-canvas", "aria-hidden": "true" });
      card.el.querySelector(".thumb").append(card.heat.canvas);
    }
    const canvas = card.heat.canvas;
    canvas.width = cols;
    canvas.height = rows;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(cols, rows);
    const c = ex.crop;
    for (let y = 0; y < rows; y++) {
      const py = ((y + 0.5) / rows) * ex.height;
      for (let x = 0; x < cols; x++) {
        const px = ((x + 0.5) / cols) * ex.width;
        const inside = px >= c.left && px < c.right && py >= c.top && py < c.bottom;
        const [r, g, b] = inside ? viridis(ex.heatmap[y][x]) : [128, 128, 128];
        const o = 4 * (y * cols + x);
        img.data[o] = r; img.data[o + 1] = g; img.data[o + 2] = b;
        img.data[o + 3] = Math.round(255 * (inside ? HEAT_ALPHA : OUTSIDE_ALPHA));
      }
    }
    ctx.putImageData(img, 0, 0);
    canvas.hidden = !card.heat.shown;
  }

  async function toggleExplain(card) {
    const heat = card.heat;
    heat.shown = !heat.shown;
    if (heat.shown && heat.state !== "done" && heat.state !== "loading") {
      heat.state = "loading";
      renderCard(card, false);
      const run = card.run;
      const params = new URLSearchParams({ top_k: "1", lang });
      if (card.meta && card.meta.model) params.set("model", card.meta.model);
      let r;
      try {
        r = await apiRequest(`${API}/explain?${params}`, {
          method: "POST",
          body: () => { const fd = new FormData(); fd.append("file", card.file, card.name); return fd; },
        });
      } catch {
        return;
      }
      if (card.removed || card.run !== run) return;
      const res = r.ok && Array.isArray(r.data.results) ? r.data.results[0] : null;
      if (res && Array.isArray(res.heatmap) && res.crop && res.target) {
        heat.state = "done";
        heat.data = res;
      } else {
        heat.state = "error";
        heat.error = !r.ok ? r.error : res && res.error ? { text: String(res.error.message || res.error.code) } : { key: "error.badResponse" };
      }
    }
    if (heat.state === "done") drawHeat(card);
    else if (heat.canvas) heat.canvas.hidden = true;
    renderCard(card, false);
  }

  function explainControls(card) {
    const heat = card.heat;
    const button = h("button", {
      type: "button", class: "btn btn-secondary btn-small explain-toggle", "aria-pressed": String(heat.shown),
      title: t("card.explainTitle"), onclick: () => toggleExplain(card),
    }, h("span", { text: t("card.explain") }));
    let caption = null;
    if (heat.shown && heat.state === "loading") caption = h("p", { class: "explain-caption", text: t("card.explainPending") });
    else if (heat.shown && heat.state === "error") caption = h("p", { class: "explain-caption is-error", text: errorText(heat.error) });
    else if (heat.shown && heat.state === "done") {
      caption = h("p", { class: "explain-caption", text: t("card.explainFor", {
        label: targetLabel(heat.data.target), score: pct(heat.data.target.score) }) });
    }
    return h("div", { class: "explain" }, button, caption);
  }

  /* ---------- Card rendering ---------- */

  // "tiger_cat" -> "Tiger cat"; leaves words like "iPod" alone.
  function prettyLabel(label) {
    const s = String(label == null ? "" : label).replace(/_/g, " ").replace(/\s+/g, " ").trim();
    if (!s) return "";
    const first = s.split(" ")[0];
    if (/[A-Z]/.test(first.slice(1))) return s;
    return s.charAt(0).toUpperCase() + s.slice(1);
  }

  // a prediction's name in the page's language (it comes in both)
  const targetLabel = (p) => (lang === "zh" && p.label_zh) || prettyLabel(p.label_en || p.label);

  const pct = (score) => `${(Math.max(0, Math.min(1, Number(score) || 0)) * 100).toFixed(1)}%`;
  const ms = (v) => (v < 10 ? v.toFixed(1) : String(Math.round(v)));

  function renderCard(card, animate) {
    const { el, body, name } = card;
    el.dataset.state = card.state;
    el.setAttribute("aria-busy", card.state === "pending" ? "true" : "false");
    el.classList.toggle("is-error", card.state === "error");

    const head = h("div", { class: "card-head" },
      h("h3", { class: "card-title", title: name, text: name }),
      h("button", {
        type: "button", class: "icon-btn", title: t("card.remove"),
        "aria-label": t("card.removeLabel", { name }),
        onclick: () => { removeCard(card); renderSummary(); els.dropzone.focus(); },
      }, icon(ICONS.close)));

    if (card.state === "pending") {
      const skeleton = h("div", { class: "skeleton", "aria-hidden": "true" });
      for (let i = 0; i < Math.min(topK(), 4); i++) skeleton.append(h("span", { class: "skeleton-row" }));
      body.replaceChildren(head,
        h("p", { class: "card-status" }, h("span", { class: "spinner", "aria-hidden": "true" }), t("card.pending")),
        skeleton);
      return;
    }

    if (card.state === "error") {
      body.replaceChildren(head,
        h("p", { class: "card-status is-error" }, icon(ICONS.alert), t("card.failed")),
        h("p", { class: "error-message", text: errorText(card.error) }),
        PERMANENT_ERRORS.has(card.error && card.error.code) ? "" : h("button", {
          type: "button", class: "btn btn-secondary btn-small retry-button",
          "aria-label": t("card.retryLabel", { name }),
          onclick: () => { enqueue(card); renderSummary(); },
        }, icon(ICONS.retry, "btn-icon"), h("span", { text: t("card.retry") })));
      return;
    }

    // Done: meta line + prediction bars.
    const r = card.result;
    const meta = h("p", { class: "card-meta" });
    if (r.width && r.height) meta.append(h("span", { class: "meta-item", text: t("card.size", { w: r.width, h: r.height }) }));
    const tm = r.timing_ms || {};
    if (typeof tm.total === "number") {
      const detail = ["decode", "preprocess", "inference", "postprocess"].every((k) => typeof tm[k] === "number")
        ? t("card.timeDetail", Object.fromEntries(["decode", "preprocess", "inference", "postprocess"].map((k) => [k, ms(tm[k])])))
        : null;
      meta.append(h("span", { class: "meta-item meta-time", title: detail }, icon(ICONS.clock), t("card.time", { ms: ms(tm.total) })));
    }
    if (r.cached) meta.append(h("span", { class: "badge", title: t("card.cachedTitle"), text: t("card.cached") }));

    // the tag policy's verdict as the headline; sensitive classes it withholds are not shown
    // (the API's raw predictions keep them: docs/library.md)
    const v = r.verdict;
    const withheld = new Set((v && v.withheld) || []);
    const headline = v ? h("p", { class: v.kind === "none" ? "card-verdict is-unsure" : "card-verdict",
      dataset: { kind: v.kind }, text: verdictText(v) }) : "";

    const list = h("ol", { class: "predictions", "aria-label": t("card.predictions", { name }) });
    (r.predictions || []).filter((p) => !withheld.has(p.wnid)).forEach((p, i) => {
      // the page's language first, the other one beneath (smaller); both come with every prediction
      const en = prettyLabel(p.label_en || p.label), zh = p.label_zh || "";
      const [main, alt] = lang === "zh" && zh ? [zh, en] : [en, zh];
      const fill = h("span", { class: "bar-fill" });
      list.append(h("li", { class: i === 0 ? "prediction is-top" : "prediction", title: p.wnid || null },
        h("span", { class: "prediction-line" },
          h("span", { class: "prediction-label", lang: main === zh ? "zh-CN" : "en", text: main || p.wnid || `#${p.index}` }),
          h("span", { class: "prediction-score", text: pct(p.score) })),
        alt && alt !== main ? h("span", { class: "prediction-alt", lang: alt === zh ? "zh-CN" : "en", text: alt }) : null,
        h("span", { class: "bar", "aria-hidden": "true" }, fill)));
      const width = pct(p.score);
      if (animate) requestAnimationFrame(() => requestAnimationFrame(() => { fill.style.width = width; }));
      else fill.style.width = width;
    });

    const engine = card.meta && card.meta.engine
      ? h("p", { class: "card-engine", text: t("card.engine", {
        model: modelTitle(card.meta.model), engine: card.meta.engine, precision: card.meta.precision || "" }).trim() })
      : null;

    body.replaceChildren(head, meta, headline, list, explainControls(card), engine);
  }

  // "probably a cat (93%)" / "可能是猫（93%）" / "unsure" / "不确定", in the page's language
  function verdictText(v) {
    if (v.kind === "none") return t("card.unsure");
    const label = lang === "zh" && v.label_zh ? v.label_zh : String(v.label_en || v.label || "").replace(/_/g, " ");
    const score = `${Math.round((Number(v.score) || 0) * 100)}%`;
    const article = /^[aeiou]/i.test(label) ? "an" : "a";
    return t("card.verdict", { label, score, article });
  }

  function renderSummary() {
    const n = cards.length;
    const count = (s) => cards.filter((c) => c.state === s).length;
    const done = count("done"), pending = count("pending"), failed = count("error");
    const parts = [t("summary.images", { n })];
    if (done) parts.push(t("summary.done", { n: done }));
    if (pending) parts.push(t("summary.pending", { n: pending }));
    if (failed) parts.push(t("summary.failed", { n: failed }));
    els.summary.textContent = parts.join(" · ");
    els.summary.hidden = n === 0;
    els.emptyState.hidden = n > 0;
    els.clearButton.disabled = n === 0;
    els.results.setAttribute("aria-busy", pending ? "true" : "false");
  }

  let lastEngine = null;
  function renderEngine(meta) {
    if (meta) lastEngine = meta;
    if (!lastEngine || !lastEngine.engine) { els.engineInfo.hidden = true; return; }
    els.engineInfo.textContent = t("footer.engine", {
      engine: [modelTitle(lastEngine.model), lastEngine.engine].filter(Boolean).join(" · "),
      precision: lastEngine.precision || "",
    });
    els.engineInfo.hidden = false;
  }

  /* ------------------------------------------------------------------ */
  /* Input: file chooser, drag and drop, paste                           */
  /* ------------------------------------------------------------------ */

  els.dropzone.addEventListener("click", () => els.fileInput.click());
  els.dropzone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " " || e.key === "Spacebar") {
      e.preventDefault();
      els.fileInput.click();
    }
  });
  els.fileInput.addEventListener("change", () => {
    addFiles(els.fileInput.files);
    els.fileInput.value = ""; // allow choosing the same file again
  });

  // Drop anywhere on the page; the drop zone lights up while dragging files.
  let dragDepth = 0;
  const hasFiles = (e) => !!e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
  const setDragging = (on) => document.body.classList.toggle("is-dragging", on);
  window.addEventListener("dragenter", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth += 1;
    setDragging(true);
  });
  window.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("dragleave", (e) => {
    if (!hasFiles(e)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) setDragging(false);
  });
  window.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    setDragging(false);
    addFiles(e.dataTransfer.files);
  });

  // Ctrl/Cmd+V of images anywhere (text pastes into inputs are left alone).
  document.addEventListener("paste", (e) => {
    const dt = e.clipboardData;
    if (!dt) return;
    let files = Array.from(dt.files || []);
    if (!files.length) {
      files = Array.from(dt.items || [])
        .filter((it) => it.kind === "file")
        .map((it) => it.getAsFile())
        .filter(Boolean);
    }
    if (!files.length) return;
    e.preventDefault();
    addFiles(files);
  });

  /* ------------------------------------------------------------------ */
  /* Controls                                                            */
  /* ------------------------------------------------------------------ */

  els.topkSelect.addEventListener("change", rerunAll);
  els.modelSelect.addEventListener("change", () => {
    selectedModel = els.modelSelect.value;
    renderModels();
    rerunAll();
  });
  els.clearButton.addEventListener("click", clearAll);
  els.langToggle.addEventListener("click", () => {
    lang = lang === "zh" ? "en" : "zh";
    storage.set("localStorage", LANG_STORAGE, lang);
    applyLanguage();
    renderEngine();
  });

  /* ------------------------------------------------------------------ */
  /* Start                                                               */
  /* ------------------------------------------------------------------ */

  // What other views of the page (library.js) share: requests with the API key, the language.
  window.WANWU_UI = {
    apiRequest, errorText, h, icon, getKey, lang: () => lang,
    onLanguage: (fn) => { languageListeners.push(fn); fn(lang); },
  };

  applyLanguage();
  loadModels();
})();
