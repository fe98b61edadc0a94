/** Markdown for the Temporal UI's current details and the benchmark results. Pure, workflow-safe. */

/** A GitHub-flavoured markdown table; cells are written as given (a `|` in a cell is escaped). */
export function markdownTable(header: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map((c) => String(c).replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), `|${header.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}
