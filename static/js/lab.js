// Progressive enhancement of the lab editor: CodeMirror with Python highlighting,
// line numbers and Tab indentation. Without JavaScript the plain textarea works.
document.addEventListener("DOMContentLoaded", function () {
  var textarea = document.getElementById("code-editor");
  if (!textarea || typeof CodeMirror === "undefined") return;
  var editor = CodeMirror.fromTextArea(textarea, {
    mode: "python",
    lineNumbers: true,
    indentUnit: 4,
    tabSize: 4,
    indentWithTabs: false,
    matchBrackets: true,
    viewportMargin: Infinity,
    extraKeys: {
      Tab: function (cm) {
        if (cm.somethingSelected()) cm.indentSelection("add");
        else cm.replaceSelection("    ", "end");
      },
      "Shift-Tab": function (cm) { cm.indentSelection("subtract"); },
    },
  });
  // htmx reads the textarea when it builds the request: keep it in sync.
  editor.on("change", function () { editor.save(); });
  window.academyEditor = editor;

  // "Load my best / my last / Reset to starter": the links reload the page with ?load=;
  // here they swap the editor's text in place instead, from the codes the page carries.
  var codes = JSON.parse((document.getElementById("editor-codes") || {}).textContent || "{}");
  var loaded = document.getElementById("editor-loaded");
  document.querySelectorAll("[data-load]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var code = codes[link.dataset.load];
      if (typeof code !== "string") return;
      event.preventDefault();
      editor.setValue(code);
      editor.save();
      if (loaded) loaded.textContent = link.textContent + ": done.";
      editor.focus();
    });
  });
});
