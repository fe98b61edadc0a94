/**
 * Option-value parsers of the CLI verbs: the rules of common/units.ts, with their errors turned into BAD_USAGE
 * (exit 2, the message naming the option and the text).
 */
import { CutpointError } from '../common/errors.ts';
import { type NumericOption, resolveNumber } from '../common/options.ts';
import { parseInteger, parseNumber, parseRate } from '../common/units.ts';

/** `parse`, throwing BAD_USAGE with the parser's message. */
function usage<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (e) {
      throw new CutpointError('BAD_USAGE', (e as Error).message);
    }
  };
}

/** A copy rate, bytes per second: `50MB`, `1.5GiB`, `0` (unlimited). */
export const rateArg = usage(parseRate);

/** An integer option of at least `min`; `name` is the option (`--parallel`). */
export const intArg = (name: string, min: number) => usage((value) => parseInteger(value, name, min));

/** A number option (fraction allowed) of at least `min`; `name` is the option. */
export const numberArg = (name: string, min: number) => usage((value) => parseNumber(value, name, min));

/**
 * A numeric option defined in common/options.ts: parsed as a number (a whole one when the option is), checked against
 * the option's bounds; `flag` names it in errors (`--parallel`).
 */
export const optionArg = (flag: string, spec: NumericOption) =>
  usage((value) => resolveNumber(flag, spec, spec.integer ? parseInteger(value, flag, spec.min) : parseNumber(value, flag, spec.min)));

/** `description (default N)` for a help text. */
export const withDefault = (description: string, spec: NumericOption) => `${description} (default ${spec.default})`;
