import { describe, expect, it } from 'vitest';
import { assertNoCredentials, directUri, parseMongoUri } from './target.ts';

describe('mongo target URIs', () => {
  it('parses members, database and options', () => {
    expect(parseMongoUri('mongodb://a:1,b/admin?replicaSet=rs0&tls=true')).toEqual({
      hosts: ['a:1', 'b:27017'],
      database: 'admin',
      options: [['replicaSet', 'rs0'], ['tls', 'true']],
      hasUserinfo: false,
    });
  });

  it.each(['mongodb://u:p@h:1/', 'mongodb://u@h:1', 'mongodb://h:1/?password=x'])('refuses credentials in %s', (uri) => {
    expect(() => assertNoCredentials(uri)).toThrow(/must not contain credentials.*CUTPOINT_MONGO_USERNAME/);
  });

  it('names what is wrong', () => {
    expect(() => parseMongoUri('mongodb+srv://c.example.net')).toThrow(/mongodb\+srv/);
    expect(() => parseMongoUri('http://x')).toThrow(/not a mongodb:\/\/ connection string/);
    expect(() => parseMongoUri('mongodb://u:secret@')).toThrow(/\*\*\*/);
  });

  it('builds a direct URI for one member, keeping TLS options and dropping the set', () => {
    expect(directUri('mongodb://a:1,b:2/?replicaSet=rs0&tls=true&authSource=admin', 'b:2')).toBe(
      'mongodb://b:2/?tls=true&authSource=admin&directConnection=true&readPreference=primaryPreferred',
    );
  });
});
