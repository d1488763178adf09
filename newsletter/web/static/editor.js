// The editor page: CodeMirror 6 over the issue's <textarea> (the form works without it),
// a toolbar and keyboard shortcuts, the live preview of the unsaved text, lint findings
// at their lines, and an autosaved draft.
//
// For other scripts (e.g. the image library) there is a small API:
//   window.NewsletterEditor.insert(text)  inserts at the cursor (replacing a selection);
//                                         the plain textarea when CodeMirror did not load
//   window.NewsletterEditor.insertBlock(text)  the same, as a paragraph of its own
//   window.NewsletterEditor.focus()       puts the cursor back in the editor
//   window.NewsletterEditor.element       the editor's element (CodeMirror's, or the textarea)
//   window.NewsletterEditor.value()       the whole text as typed
// and #editor-toolbar-extra, an element of the toolbar where they may add buttons. When
// the API is ready, "newsletter-editor:ready" is dispatched on the document.
(function () {
  "use strict";
  const form = document.getElementById("edit-form");
  if (!form) return;
  const textarea = document.getElementById("issue-text");
  const toolbar = document.getElementById("editor-toolbar");
  const status = document.getElementById("editor-status");
  const token = form.querySelector("input[name=csrf_token]").value;
  const loaded = form.querySelector("input[name=loaded]").value;
  const LIVE_INTERVAL_MS = 250;  // at most one render request per interval
  const AUTOSAVE_DELAY_MS = 3000;  // after the first change not yet autosaved
  let view = null;
  let saving = false;

  function getText() { return view ? view.state.doc.toString() : textarea.value; }

  function insert(text) {
    if (view) {
      view.dispatch(view.state.replaceSelection(text), { scrollIntoView: true, userEvent: "input" });
      view.focus();
      return;
    }
    textarea.setRangeText(text, textarea.selectionStart, textarea.selectionEnd, "end");
    textarea.dispatchEvent(new Event("input", { bubbles: true }));
    textarea.focus();
  }

  // The text as a paragraph of its own: a blank line before it unless one is there.
  function insertBlock(text) {
    const from = view ? view.state.selection.main.from : textarea.selectionStart;
    const before = getText().slice(0, from);
    const lead = before && !before.endsWith("\n\n") ? (before.endsWith("\n") ? "\n" : "\n\n") : "";
    insert(lead + text + "\n");
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": token, Accept: "application/json" },
      body: JSON.stringify(body),
    });
  }

  // Live preview --------------------------------------------------------------------
  // The first change after a pause is sent at once, later ones at most once per interval
  // (the last change always); one request at a time, and text typed meanwhile is sent
  // when it returns. A reply older than the one shown is dropped, so a slow render never
  // replaces a newer preview.
  let liveTimer = null;
  let lastSent = -Infinity;
  let sent = 0;
  let shown = 0;
  let inFlight = false;
  let again = false;

  function scheduleLive() {
    clearTimeout(liveTimer);
    liveTimer = setTimeout(sendLive, Math.max(0, lastSent + LIVE_INTERVAL_MS - performance.now()));
  }

  async function sendLive() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    again = false;
    lastSent = performance.now();
    const number = ++sent;
    const preview = window.NewsletterPreview;
    const as = preview ? preview.recipient() : "";
    try {
      const response = await post(form.dataset.liveUrl + "?as=" + encodeURIComponent(as), { text: getText() });
      if (response.ok) {
        const data = await response.json();
        if (number > shown) {
          shown = number;
          if (preview) preview.showUnsaved(data, number);
          showDiagnostics(data);
        }
      }
    } catch (e) {
      // offline or the server restarting: the next keystroke tries again
    } finally {
      inFlight = false;
      if (again) sendLive();
    }
  }

  function showDiagnostics(data) {
    if (!view) return;
    const doc = view.state.doc;
    const found = [];
    function at(number, severity, message) {
      const line = doc.line(Math.min(Math.max(number || 1, 1), doc.lines));
      found.push({ from: line.from, to: line.to, severity: severity, message: message });
    }
    if (data.error) at(data.error_line, "error", data.error);
    (data.error ? [] : data.findings || []).forEach(function (finding) {
      at(finding.line, finding.severity === "error" ? "error" : "warning", finding.message);
    });
    view.dispatch(CM.setDiagnostics(view.state, found));
  }

  // Autosave ------------------------------------------------------------------------
  let autosaveTimer = null;
  let autosaved = textarea.value;

  function scheduleAutosave() {
    if (!autosaveTimer) autosaveTimer = setTimeout(autosave, AUTOSAVE_DELAY_MS);
  }

  async function autosave() {
    autosaveTimer = null;
    const text = getText();
    if (saving || text === autosaved) return;
    try {
      const response = await post(form.dataset.draftUrl, { text: text, loaded: loaded });
      if (!response.ok) throw new Error("HTTP " + response.status);
      autosaved = text;
      form.dataset.autosaved = String(Number(form.dataset.autosaved || 0) + 1);
      status.textContent = status.dataset.autosaved + " " + new Date().toLocaleTimeString();
    } catch (e) {
      status.textContent = status.dataset.autosaveFailed;
    }
  }

  function changed() {
    status.textContent = status.dataset.unsaved;
    scheduleLive();
    scheduleAutosave();
  }

  function save() {
    form.requestSubmit();
    return true;
  }

  form.addEventListener("submit", function () {
    saving = true;
    clearTimeout(autosaveTimer);
    clearTimeout(liveTimer);
  });

  // The same text without CodeMirror: live preview, autosave and Ctrl-S still work.
  textarea.addEventListener("input", changed);
  textarea.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
      event.preventDefault();
      save();
    }
  });

  window.NewsletterEditor = {
    insert: insert,
    insertBlock: insertBlock,
    focus: function () { (view || textarea).focus(); },
    get element() { return view ? view.dom : textarea; },
    value: getText,
  };

  if (form.dataset.restored) scheduleLive();
  if (typeof window.CM === "undefined") {
    document.dispatchEvent(new CustomEvent("newsletter-editor:ready"));
    return;
  }

  // CodeMirror ----------------------------------------------------------------------
  const texts = toolbar.dataset;

  function wrap(before, after, placeholder) {
    return function (target) {
      const state = target.state;
      target.dispatch(state.changeByRange(function (range) {
        const chosen = state.sliceDoc(range.from, range.to) || placeholder;
        const start = range.from + before.length;
        return {
          changes: { from: range.from, to: range.to, insert: before + chosen + after },
          range: CM.EditorSelection.range(start, start + chosen.length),
        };
      }), { scrollIntoView: true, userEvent: "input" });
      return true;
    };
  }

  // Markdown [text](url) or ![alt](url), the address selected to be typed over.
  function linkLike(mark, placeholder) {
    return function (target) {
      const state = target.state;
      target.dispatch(state.changeByRange(function (range) {
        const chosen = state.sliceDoc(range.from, range.to) || placeholder;
        const head = mark + "[" + chosen + "](";
        const url = "https://";
        return {
          changes: { from: range.from, to: range.to, insert: head + url + ")" },
          range: CM.EditorSelection.range(range.from + head.length, range.from + head.length + url.length),
        };
      }), { scrollIntoView: true, userEvent: "input" });
      return true;
    };
  }

  // Give every selected line a prefix (replacing the one ``existing`` matches).
  function prefixLines(prefix, existing) {
    return function (target) {
      const state = target.state;
      const done = new Set();
      const changes = [];
      state.selection.ranges.forEach(function (range) {
        const first = state.doc.lineAt(range.from).number;
        const last = state.doc.lineAt(range.to).number;
        for (let number = first; number <= last; number++) {
          if (done.has(number)) continue;
          done.add(number);
          const line = state.doc.line(number);
          const old = line.text.match(existing);
          const length = old ? old[0].length : 0;
          changes.push({ from: line.from, to: line.from + length, insert: prefix(number - first) });
        }
      });
      target.dispatch({ changes: changes, scrollIntoView: true, userEvent: "input" });
      return true;
    };
  }

  function table(target) {
    const head = texts.tableHead;
    const line = target.state.doc.lineAt(target.state.selection.main.head);
    const before = line.text.trim() ? "\n\n" : "";
    const block = before + "| " + head + " 1 | " + head + " 2 |\n| --- | --- |\n|  |  |\n";
    target.dispatch({ changes: { from: line.to, insert: block }, scrollIntoView: true, userEvent: "input" });
    return true;
  }

  const LIST = /^\s*([-*+]|\d+[.)])\s+/;
  const commands = {
    heading2: prefixLines(function () { return "## "; }, /^#{1,6}\s*/),
    heading3: prefixLines(function () { return "### "; }, /^#{1,6}\s*/),
    bold: wrap("**", "**", ""),
    italic: wrap("_", "_", ""),
    link: linkLike("", texts.linkText),
    image: linkLike("!", texts.imageAlt),
    bullets: prefixLines(function () { return "- "; }, LIST),
    numbers: prefixLines(function (index) { return (index + 1) + ". "; }, LIST),
    table: table,
    undo: CM.undo,
    redo: CM.redo,
  };

  const shortcuts = [
    { key: "Mod-b", run: commands.bold },
    { key: "Mod-i", run: commands.italic },
    { key: "Mod-k", run: commands.link, preventDefault: true },
    { key: "Mod-s", run: save, preventDefault: true },
  ];

  // The editor lives in a shadow root: CodeMirror's style module puts its styles into a
  // <style> element on a document, which the page's CSP (style-src 'self', no
  // 'unsafe-inline') refuses, but into a constructed style sheet on a shadow root, which
  // the CSP allows. So the page's own style.css does not reach it; its look is the theme.
  const host = document.createElement("div");
  host.id = "code-editor";
  host.className = "code-editor";
  const shadow = host.attachShadow({ mode: "open" });
  const theme = CM.EditorView.theme({
    "&": { backgroundColor: "#fff", border: "1px solid #b9c0c8", borderRadius: "6px", fontSize: ".9rem" },
    "&.cm-focused": { outline: "2px solid #1f5fa8", outlineOffset: "1px" },
    ".cm-scroller": { fontFamily: 'ui-monospace, "DejaVu Sans Mono", Consolas, monospace', lineHeight: "1.45", minHeight: "24rem", maxHeight: "75vh" },
    ".cm-content": { padding: ".5rem 0" },
    ".cm-gutters": { backgroundColor: "#f4f6f8", borderRight: "1px solid #d8dde2" },
  });

  try {
    view = new CM.EditorView({
      root: shadow,
      parent: shadow,
      doc: textarea.value,
      extensions: [
        CM.lineNumbers(),
        CM.history(),
        CM.drawSelection(),
        CM.highlightActiveLine(),
        CM.markdown(),
        CM.syntaxHighlighting(CM.defaultHighlightStyle),
        CM.lintGutter(),
        CM.EditorView.lineWrapping,
        theme,
        CM.keymap.of(shortcuts.concat(CM.historyKeymap, CM.searchKeymap, CM.defaultKeymap)),
        CM.EditorView.contentAttributes.of({ "aria-label": texts.textLabel, spellcheck: "true" }),
        CM.EditorView.updateListener.of(function (update) {
          if (!update.docChanged) return;
          textarea.value = update.state.doc.toString();
          changed();
        }),
      ],
    });
  } catch (e) {
    view = null;  // the plain textarea stays
    document.dispatchEvent(new CustomEvent("newsletter-editor:ready"));
    return;
  }
  textarea.parentNode.insertBefore(host, textarea.nextSibling);
  textarea.hidden = true;
  const label = form.querySelector("label[for=issue-text]");
  if (label) label.addEventListener("click", function () { view.focus(); });

  toolbar.querySelectorAll("button[data-command]").forEach(function (button) {
    button.addEventListener("click", function () {
      commands[button.dataset.command](view);
      view.focus();
    });
  });
  toolbar.hidden = false;

  if (window.NewsletterPreview) window.NewsletterPreview.onRecipientChange = sendLive;
  // The findings of the saved text, at their lines, until the first edit.
  const preview = document.getElementById("preview");
  fetch(preview.dataset.renderUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (data) { if (data && data.has_render && !shown && !form.dataset.restored) showDiagnostics({ findings: data.findings }); })
    .catch(function () { /* the preview shows its own error */ });
  document.dispatchEvent(new CustomEvent("newsletter-editor:ready"));
})();
