import type { AlertSettings } from "../db/schema";

/** Thresholds a merchant has not set. */
export const ALERT_DEFAULTS = {
  authorized_uncaptured_hours: 24,
  apm_pending_minutes: 60,
  forged_per_hour: 50,
  fulfillment_failing_minutes: 30,
} as const;
export type AlertThresholds = { [K in keyof typeof ALERT_DEFAULTS]: number };

/** The merchant's thresholds, each set one or its default. */
export function alertThresholds(settings: AlertSettings | null | undefined): AlertThresholds {
  return {
    authorized_uncaptured_hours: settings?.authorized_uncaptured_hours ?? ALERT_DEFAULTS.authorized_uncaptured_hours,
    apm_pending_minutes: settings?.apm_pending_minutes ?? ALERT_DEFAULTS.apm_pending_minutes,
    forged_per_hour: settings?.forged_per_hour ?? ALERT_DEFAULTS.forged_per_hour,
    fulfillment_failing_minutes: settings?.fulfillment_failing_minutes ?? ALERT_DEFAULTS.fulfillment_failing_minutes,
  };
}
