// berthd's version, as Version.Version reports it.
export const BERTH_VERSION = 'v0.1.0';
export const BERTH_REVISION = 'berth';
