import { describe, expect, it } from 'vitest';
import { erasureMessage, loginDeleted } from '../src/screens/Settings';

describe('the account erasure report in words', () => {
  it('names what went and leaves out zeros', () => {
    expect(erasureMessage({ deleted: { photos: 3, feedback_events: 2, faces: 0 }, remaining: {} }))
      .toBe('Your library is deleted (3 photos, 2 feedback events).');
  });

  it('says what is still being removed', () => {
    expect(erasureMessage({ deleted: {}, remaining: { search_documents: 4 } }))
      .toBe('Your library is deleted. Still being removed: 4 search documents; try again in a minute to finish.');
  });

  it('says the sign-in went too, and signs out, when the cloud deleted it', () => {
    const report = { deleted: { photos: 1, logins: 1 }, remaining: { search_documents: 2 } };
    expect(loginDeleted(report)).toBe(true);
    expect(erasureMessage(report))
      .toBe('Your library and your sign-in are deleted (1 photos). Still being removed, by itself: 2 search documents. You are signed out now.');
    expect(loginDeleted({ deleted: { photos: 1, logins: 0 }, remaining: {} })).toBe(false);
  });
});
