export const JOB_OPTIONS = {
  attempts: 1, // an org's failure is handled by the job itself; BullMQ retrying would race the state tracker
  removeOnComplete: { age: 7 * 24 * 3600, count: 50_000 },
  removeOnFail: { age: 30 * 24 * 3600 },
};
