// DOM helpers shared by the console's modules.

export const $ = (id) => /** @type {any} */ (document.getElementById(id));

/** An element with attributes (`class`, `on<event>` listeners, the rest as attributes) and children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

/** A <dl> from [term, value] pairs (values may be nodes). */
export function definitionList(pairs, className = "facts") {
  const list = el("dl", { class: className });
  for (const [term, value] of pairs) {
    if (value === "" || value === null || value === undefined) continue;
    list.append(el("dt", {}, term), el("dd", {}, value));
  }
  return list;
}

export const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
