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
});
