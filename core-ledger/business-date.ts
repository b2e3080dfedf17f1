/**
 * The business date (会计日) of an instant: the calendar date in China Standard Time (UTC+8, no daylight saving),
 * moved back by the clearing cut-off. With a cut-off of 23 (23:00 local), 23:30 on the 24th belongs to the 25th.
 */
export const CHINA_STANDARD_TIME_OFFSET_HOURS = 8;

export function businessDateOf(instant: Date, cutoffHourLocal = 0): string {
  if (!Number.isInteger(cutoffHourLocal) || cutoffHourLocal < 0 || cutoffHourLocal > 23)
    throw new RangeError(`cut-off hour must be an integer 0..23, got ${cutoffHourLocal}`);
  // A cut-off before midnight starts the next business date early; 0 means the date is the local calendar date.
  const shiftHours = CHINA_STANDARD_TIME_OFFSET_HOURS + (cutoffHourLocal === 0 ? 0 : 24 - cutoffHourLocal);
  return new Date(instant.getTime() + shiftHours * 3_600_000).toISOString().slice(0, 10);
}
