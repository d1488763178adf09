// Images in the editor: a toolbar button, paste and drop. Each image waits in a dialog for
// its alt text, is uploaded to the library (/editor/media) and inserted as Markdown at the
// cursor: through window.NewsletterEditor.insert when the editor provides it, else into the
// textarea. Everything the server or the file names is shown as text, never as HTML.
(function () {
  "use strict";
  var form = document.getElementById("edit-form");
  var dialog = document.getElementById("media-dialog");
  var picker = document.getElementById("media-file");
  if (!form || !dialog || !picker) return;
  var alt = document.getElementById("media-dialog-alt");
  var error = document.getElementById("media-dialog-error");
  var preview = document.getElementById("media-dialog-preview");
  var insertButton = document.getElementById("media-dialog-insert");
  var ACCEPTED = { "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp" };
  var pending = null;
  var cursor = null;
  insertButton.dataset.label = insertButton.textContent;

  function textarea() {
    return form.querySelector("textarea[name=text]");
  }

  function insert(text) {
    var editor = window.NewsletterEditor;
    if (editor && typeof editor.insertBlock === "function") {
      editor.insertBlock(text);
      if (typeof editor.focus === "function") editor.focus();
      return;
    }
    var area = textarea();
    var start = cursor ? cursor[0] : area.value.length, end = cursor ? cursor[1] : start;
    var before = area.value.slice(0, start);
    var block = (before && !before.endsWith("\n\n") ? (before.endsWith("\n") ? "\n" : "\n\n") : "") + text + "\n";
    area.setRangeText(block, start, end, "end");
    area.dispatchEvent(new Event("input", { bubbles: true }));
    area.focus();
  }

  // A pasted image may come without a file name: give it one that matches its type.
  function named(file) {
    var ext = ACCEPTED[file.type];
    if (!ext || /\.[a-z0-9]+$/i.test(file.name || "")) return file;
    return new File([file], "image." + ext, { type: file.type });
  }

  function ask(file) {
    var area = textarea();
    // Where the text was when the image came: the dialog takes the focus, and the page
    // may move the textarea's selection meanwhile.
    cursor = area ? [area.selectionStart, area.selectionEnd] : null;
    pending = named(file);
    alt.value = "";
    error.textContent = "";
    alt.removeAttribute("aria-invalid");
    document.getElementById("media-dialog-name").textContent = pending.name;
    preview.hidden = true;
    if (ACCEPTED[pending.type]) {
      var reader = new FileReader();  // a data: URL: the page's CSP allows no blob: images
      reader.onload = function () { preview.src = reader.result; preview.hidden = false; };
      reader.readAsDataURL(pending);
    }
    insertButton.disabled = false;
    insertButton.textContent = insertButton.dataset.label;
    dialog.showModal();
    alt.focus();
  }

  function refuse(message) {
    error.textContent = message;
    alt.setAttribute("aria-invalid", "true");
    insertButton.disabled = false;
    insertButton.textContent = insertButton.dataset.label;
  }

  function upload() {
    var text = alt.value.trim();
    if (!text) { refuse(dialog.dataset.altRequired); alt.focus(); return; }
    var body = new FormData();
    body.append("csrf_token", dialog.dataset.csrf);  // first: the CSRF check reads the start
    body.append("alt", text);
    body.append("file", pending, pending.name);
    insertButton.disabled = true;
    insertButton.textContent = dialog.dataset.uploading;
    fetch(dialog.dataset.uploadUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": dialog.dataset.csrf },
    }).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (answer) {
      if (!answer.ok) { refuse(answer.data.error || dialog.dataset.failed); return; }
      dialog.close();
      pending = null;
      insert(answer.data.markdown);
    }).catch(function () { refuse(dialog.dataset.failed); });
  }

  function imageOf(list) {
    for (var i = 0; list && i < list.length; i++) {
      if (list[i].kind === undefined || list[i].kind === "file") {
        var file = list[i].getAsFile ? list[i].getAsFile() : list[i];
        if (file) return file;
      }
    }
    return null;
  }

  document.getElementById("media-dialog-form").addEventListener("submit", function (event) {
    event.preventDefault();
    upload();
  });
  document.getElementById("media-dialog-cancel").addEventListener("click", function () {
    pending = null;
    dialog.close();
  });
  picker.addEventListener("change", function () {
    if (picker.files.length) ask(picker.files[0]);
    picker.value = "";
  });
  form.addEventListener("paste", function (event) {
    var file = event.clipboardData && imageOf(event.clipboardData.files);
    if (!file) return;  // text is pasted as usual
    event.preventDefault();
    event.stopPropagation();
    ask(file);
  }, true);
  form.addEventListener("dragover", function (event) {
    if (event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
      event.preventDefault();
    }
  }, true);
  form.addEventListener("drop", function (event) {
    var file = event.dataTransfer && imageOf(event.dataTransfer.files);
    if (!file) return;
    event.preventDefault();
    event.stopPropagation();
    ask(file);
  }, true);

  var button = document.createElement("button");
  button.type = "button";
  button.id = "media-button";
  button.className = "secondary";
  button.textContent = dialog.dataset.button;
  button.addEventListener("click", function () { picker.click(); });
  // In the editor's toolbar when it has one (it may be built after this script runs).
  function placeButton() {
    var toolbar = document.getElementById("editor-toolbar-extra");
    if (toolbar) {
      if (button.parentNode !== toolbar) toolbar.appendChild(button);
    } else if (!button.parentNode) {
      var area = textarea();
      var label = area.closest("label") || area;
      label.insertAdjacentElement("afterend", button);
    }
  }
  placeButton();
  window.addEventListener("load", placeButton);
})();
