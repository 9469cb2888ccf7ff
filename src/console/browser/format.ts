/** Formatting of the console's numbers: the same rules on every page. */
export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

export function usd(value: number): string {
  return `$${value.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: value < 1 ? 4 : 2 })}`;
}

export function seconds(value: number | undefined): string {
  if (value === undefined) return '–';
  return value < 1 ? `${(value * 1000).toFixed(value < 0.01 ? 2 : 0)} ms` : `${value.toFixed(2)} s`;
}

export function rate(value: number | undefined): string {
  return value === undefined ? '–' : `${value.toFixed(value < 10 ? 2 : 0)}/s`;
}

export function percent(value: number | undefined): string {
  return value === undefined ? '–' : `${(value * 100).toFixed(value < 0.1 ? 2 : 1)} %`;
}
