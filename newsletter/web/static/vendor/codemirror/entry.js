// The parts of CodeMirror 6 that the newsletter editor page uses, bundled into one
// file (codemirror.min.js) that defines the global `CM`. See README.md for the rebuild.
export { EditorState, EditorSelection } from "@codemirror/state";
export {
  EditorView, keymap, drawSelection, highlightActiveLine, lineNumbers, placeholder,
} from "@codemirror/view";
export {
  defaultKeymap, history, historyKeymap, undo, redo, indentLess, indentMore,
} from "@codemirror/commands";
export {
  syntaxHighlighting, defaultHighlightStyle, HighlightStyle, bracketMatching,
} from "@codemirror/language";
import { parser as markdownParser, GFM } from "@lezer/markdown";
import { Language, LanguageSupport, defineLanguageFacet } from "@codemirror/language";

// Markdown with GitHub's tables and strikethrough, without @codemirror/lang-markdown's
// embedded HTML, JavaScript and CSS languages (they would triple the bundle's size).
const markdownData = defineLanguageFacet({ commentTokens: { block: { open: "<!--", close: "-->" } } });
export function markdown() {
  return new LanguageSupport(new Language(markdownData, markdownParser.configure([GFM]), [], "markdown"));
}
export { lintGutter, setDiagnostics, forEachDiagnostic } from "@codemirror/lint";
export { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
export { tags } from "@lezer/highlight";
