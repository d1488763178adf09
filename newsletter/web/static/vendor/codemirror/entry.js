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

import { tags as highlightTags } from "@lezer/highlight";

// An issue file starts with YAML front matter between two '---' lines; without this,
// Markdown reads its last line as a setext heading.
const FENCE = /^(---|\.\.\.)\s*$/;
const FrontMatter = {
  defineNodes: [{ name: "FrontMatter", block: true, style: highlightTags.meta }],
  parseBlock: [{
    name: "FrontMatter",
    before: "HorizontalRule",
    parse(cx, line) {
      if (cx.lineStart !== 0 || !/^---\s*$/.test(line.text)) return false;
      while (cx.nextLine()) {
        if (FENCE.test(line.text)) {
          const end = cx.lineStart + line.text.length;
          cx.nextLine();
          cx.addElement(cx.elt("FrontMatter", 0, end));
          return true;
        }
      }
      cx.addElement(cx.elt("FrontMatter", 0, cx.lineStart));
      return true;
    },
  }],
};

// Markdown with GitHub's tables and strikethrough, and front matter, without
// @codemirror/lang-markdown's embedded HTML, JavaScript and CSS languages (they would
// make the bundle half as large again).
const markdownData = defineLanguageFacet({ commentTokens: { block: { open: "<!--", close: "-->" } } });
export function markdown() {
  const parser = markdownParser.configure([GFM, FrontMatter]);
  return new LanguageSupport(new Language(markdownData, parser, [], "markdown"));
}
export { lintGutter, setDiagnostics, forEachDiagnostic } from "@codemirror/lint";
export { searchKeymap, highlightSelectionMatches } from "@codemirror/search";
export { tags } from "@lezer/highlight";
