import { describe, expect, it } from 'vitest';
import { erasureMessage } from '../src/screens/Settings';

describe('the account erasure report in words', () => {
  it('names what went and leaves out zeros', () => {
    expect(erasureMessage({ deleted: { photos: 3, feedback_events: 2, faces: 0 }, remaining: {} }))
      .toBe('Your library is deleted (3 photos, 2 feedback events).');
  });

  it('says what is still being removed', () => {
    expect(erasureMessage({ deleted: {}, remaining: { search_documents: 4 } }))
      .toBe('Your library is deleted. Still being removed: 4 search documents; try again in a minute to finish.');
  });
});
