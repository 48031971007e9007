// The doubt allowed where the server's clock (a backup's stop time) meets the
// repository's (when a timeline's history file was stored): latest-timeline.ts.

export const CLOCK_SLACK_MINUTES = 10;
