// Editor preview: tabs and widths, the "preview as" picker, and live reload over
// server-sent events. The chosen tab, width and recipient live in sessionStorage, so
// neither a live refresh nor a full page reload loses them.
(function () {
  "use strict";
  const root = document.getElementById("preview");
  if (!root) return;
  const frame = document.getElementById("frame");
  const stage = document.getElementById("stage");
  const picker = document.getElementById("preview-as");
  const storageKey = "preview:" + root.dataset.renderUrl;
  const state = Object.assign({ tab: "email", width: "desktop", as: "" },
    JSON.parse(sessionStorage.getItem(storageKey) || "{}"));
  let shownVersion = Number(root.dataset.version);
  let shownAs = "";

  function save() { sessionStorage.setItem(storageKey, JSON.stringify(state)); }

  function applyLayout() {
    document.querySelectorAll("[role=tab]").forEach(function (tab) {
      const selected = tab.dataset.tab === state.tab &&
        (state.tab !== "email" || tab.dataset.width === state.width);
      tab.setAttribute("aria-selected", selected ? "true" : "false");
    });
    ["email", "text", "source"].forEach(function (name) {
      document.getElementById("pane-" + name).hidden = state.tab !== name;
    });
    stage.className = "stage width-" + state.width;
    picker.value = state.as;
  }

  function withParams(url, params) {
    const query = new URLSearchParams(params);
    return url + "?" + query.toString();
  }

  function showFindings(findings) {
    const list = document.getElementById("findings");
    list.textContent = "";
    if (!findings.length) {
      const item = document.createElement("li");
      item.className = "none";
      item.textContent = list.dataset.none;
      list.appendChild(item);
      return;
    }
    findings.forEach(function (finding) {
      const item = document.createElement("li");
      item.className = "finding " + finding.severity;
      const where = document.createElement("span");
      where.className = "where";
      where.textContent = finding.line ? list.dataset.line + " " + finding.line : "";
      item.appendChild(where);
      item.appendChild(document.createTextNode(" " + finding.message));
      list.appendChild(item);
    });
  }

  function showSize(bytes, limit) {
    const size = document.getElementById("size");
    size.textContent = (bytes / 1024).toFixed(1) + " KB / " + Math.round(limit / 1024) + " KB";
    size.className = "size" + (bytes > limit ? " bad" : bytes > 0.9 * limit ? " warn" : "");
  }

  function loadFrame(url, onShown) {
    let scroll = 0;
    try { scroll = frame.contentWindow.scrollY; } catch (e) { scroll = 0; }
    frame.onload = function () {
      try { frame.contentWindow.scrollTo(0, scroll); } catch (e) { /* other origin */ }
      onShown();
    };
    frame.src = url;
  }

  function swapFrame(version) {
    loadFrame(withParams(root.dataset.frameUrl, { v: version, as: state.as }), function () {
      root.dataset.shownVersion = String(version);
    });
    shownVersion = version;
    shownAs = state.as;
  }

  // Everything but the frame: the error (the last good render stays), text, source,
  // findings, size. Returns whether there is a render to show.
  function show(data) {
    const error = document.getElementById("error");
    error.hidden = !data.error;
    document.getElementById("error-text").textContent = data.error || "";
    document.getElementById("error-kept").hidden = !data.has_render && !root.dataset.unsaved;
    root.dataset.error = data.error ? "1" : "";
    if (!data.has_render) return false;
    document.getElementById("subject").textContent = data.subject;
    document.getElementById("text").textContent = data.text;
    document.getElementById("source").textContent = data.source;
    showFindings(data.findings);
    showSize(data.size_bytes, data.size_limit);
    return true;
  }

  // Requests may answer out of order (the first render and a recipient picked at once):
  // only the newest one asked for is shown.
  let asked = 0;

  async function refresh() {
    // Once the editor page shows unsaved text, a change on disk must not replace it.
    if (root.dataset.unsaved) return;
    const number = ++asked;
    const response = await fetch(withParams(root.dataset.renderUrl, { as: state.as }),
      { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok || root.dataset.unsaved || number !== asked) return;
    const data = await response.json();
    if (number !== asked || !show(data)) return;
    if (data.render_version !== shownVersion || state.as !== shownAs) swapFrame(data.render_version);
  }

  // For the editor page (editor.js): show a render of the unsaved text, made in memory.
  window.NewsletterPreview = {
    recipient: function () { return state.as; },
    onRecipientChange: null,
    showUnsaved: function (data, number) {
      root.dataset.unsaved = "1";
      if (!show(data)) return;
      loadFrame(data.frame_url, function () { root.dataset.shownLive = String(number); });
    },
  };
  document.querySelectorAll("[role=tab]").forEach(function (tab) {
    tab.addEventListener("click", function () {
      state.tab = tab.dataset.tab;
      if (tab.dataset.width) state.width = tab.dataset.width;
      save();
      applyLayout();
    });
  });
  picker.addEventListener("change", function () {
    state.as = picker.value;
    save();
    const hook = window.NewsletterPreview.onRecipientChange;
    if (root.dataset.unsaved && hook) hook(); else refresh();
  });

  applyLayout();
  frame.onload = function () { root.dataset.shownVersion = String(shownVersion); };
  shownAs = "";
  refresh();
  const events = new EventSource(root.dataset.eventsUrl);
  events.addEventListener("render", function () { refresh(); });
  events.addEventListener("open", function () { root.dataset.live = "1"; });
})();
