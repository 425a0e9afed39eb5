/**
 * A table whose rows are keyed by record id and updated in place, so a live update never steals focus from the
 * button a keyboard user is on. Under ~600 px wide the CSS turns rows into stacked cards; each cell carries its
 * column name in `data-label` for that. Explicit ARIA roles keep the table semantics when CSS changes `display`.
 */
import { h, setText } from './dom.js';
import type { LoadState } from './live.js';

export interface Row<T> {
  tr: HTMLTableRowElement;
  update(record: T): void;
}

export interface TableOptions<T> {
  id: string;
  headers: string[];
  key(record: T): string;
  createRow(record: T): Row<T>;
  /** Shown instead of the table when there are no rows. */
  empty: string;
  /** What is loading, for "Loading …". */
  noun: string;
}

export function row(...cells: HTMLTableCellElement[]): HTMLTableRowElement {
  return h('tr', { role: 'row' }, ...cells);
}

/** A data cell labelled with its column (shown before the value on narrow screens). */
export function cell(label: string, ...children: Array<Node | string>): HTMLTableCellElement {
  return h('td', { role: 'cell', 'data-label': label }, ...children);
}

/** The cell that names the row. */
export function headerCell(label: string, ...children: Array<Node | string>): HTMLTableCellElement {
  return h('th', { scope: 'row', role: 'rowheader', 'data-label': label }, ...children);
}

export class KeyedTable<T> {
  readonly element: HTMLElement;
  private readonly table: HTMLTableElement;
  private readonly tbody: HTMLTableSectionElement;
  private readonly caption: HTMLTableCaptionElement;
  private readonly emptyEl: HTMLElement;
  private readonly stateEl: HTMLElement;
  private readonly rows = new Map<string, Row<T>>();
  private count = 0;

  constructor(private readonly options: TableOptions<T>) {
    this.caption = h('caption');
    const head = h('thead', { role: 'rowgroup' }, h('tr', { role: 'row' }, ...options.headers.map((label) => h('th', { scope: 'col', role: 'columnheader' }, label))));
    this.tbody = h('tbody', { role: 'rowgroup' });
    this.table = h('table', { id: options.id, class: 'data', role: 'table' }, this.caption, head, this.tbody);
    this.emptyEl = h('p', { class: 'empty', hidden: true }, options.empty);
    this.stateEl = h('div', { class: 'load-state', hidden: true });
    this.element = h('div', { class: 'table-wrap' }, this.stateEl, this.table, this.emptyEl);
  }

  /** Shows `records` in this order, reusing the rows of records already shown. */
  render(records: T[], caption: string): void {
    setText(this.caption, caption);
    const keep = new Set<string>();
    records.forEach((record, i) => {
      const key = this.options.key(record);
      keep.add(key);
      let r = this.rows.get(key);
      if (!r) {
        r = this.options.createRow(record);
        r.tr.dataset.key = key;
        this.rows.set(key, r);
      }
      r.update(record);
      // Move a row only when it is out of place: moving the row a user is focused in would drop that focus.
      const at = this.tbody.children[i];
      if (at !== r.tr) this.tbody.insertBefore(r.tr, at ?? null);
    });
    for (const [key, r] of this.rows) {
      if (keep.has(key)) continue;
      // A row that disappears under the keyboard: focus goes to the table's caption area, not to <body>.
      const hadFocus = r.tr.contains(document.activeElement);
      r.tr.remove();
      this.rows.delete(key);
      if (hadFocus) this.focusFallback();
    }
    this.count = records.length;
    this.showRows();
  }

  setLoad(load: LoadState, retry: () => void): void {
    if (load.state === 'ready') {
      this.stateEl.hidden = true;
      this.stateEl.replaceChildren();
      this.showRows();
      return;
    }
    if (load.state === 'loading') {
      this.stateEl.replaceChildren(h('p', { class: 'muted' }, `Loading ${this.options.noun}…`));
    } else {
      const button = h('button', { type: 'button', class: 'btn' }, 'Retry');
      button.addEventListener('click', retry);
      this.stateEl.replaceChildren(h('p', { role: 'alert' }, `Could not load ${this.options.noun}: ${load.message}`), button);
    }
    this.stateEl.hidden = false;
    this.table.hidden = this.count === 0;
    this.emptyEl.hidden = true;
  }

  private showRows(): void {
    if (!this.stateEl.hidden) return;
    this.table.hidden = this.count === 0;
    this.emptyEl.hidden = this.count !== 0;
  }

  private focusFallback(): void {
    const target = this.element.closest<HTMLElement>('[role="tabpanel"]');
    target?.focus();
  }
}
