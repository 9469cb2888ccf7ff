/**
 * Builds DOM nodes from values with textContent only: nothing a key name, team name, mode or model
 * holds is ever parsed as HTML, so nothing in it can become markup.
 */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

/** A table with a caption, header row and body rows of text. */
export function table(caption: string, headers: readonly string[], rows: readonly (readonly (string | Node)[])[], testId: string): HTMLTableElement {
  return el(
    'table',
    { 'data-testid': testId },
    el('caption', {}, caption),
    el('thead', {}, el('tr', {}, ...headers.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, ...(rows.length === 0 ? [el('tr', {}, el('td', { colspan: String(headers.length) }, 'none yet'))] : rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c)))))),
  );
}

/** A number tile; `metric` names it for tests and for people reading the page's source; `raw`, the unformatted value. */
export function tile(label: string, value: string, metric: string, raw?: number): HTMLLIElement {
  const attributes: Record<string, string> = { class: 'value', 'data-metric': metric };
  if (raw !== undefined) attributes['data-value'] = String(raw);
  return el('li', { class: 'tile' }, el('div', { class: 'label' }, label), el('div', attributes, value));
}
