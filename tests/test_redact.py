"""PII redaction: what is replaced, what ordinary log text survives, and the settings."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import replace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from agentdigest.redact import Redactor, _luhn, normalise

REDACTED = [
    # emails
    ("contact jane.doe@example.com now", "contact [email] now"),
    ("a+tag@sub.example.co.uk,", "[email],"),
    ("<JOHN_SMITH@Example.ORG>", "<[email]>"),
    ("john+billing@example.com and jane.doe+orders-2026@mail.example.co.uk", "[email] and [email]"),
    # Found in an adversarial audit: a quoted local part passed whole
    ('mail "john.doe"@example.com bounced', "mail [email] bounced"),
    ('"john doe"@example.com', "[email]"),
    ('<"j.smith+x"@mail.example.org>', "<[email]>"),
    # phones, international and North American
    ("call +44 20 7946 0958 today", "call [phone] today"),
    ("+49 30 1234567", "[phone]"),
    ("+33 1 23 45 67 89", "[phone]"),
    ("+4915112345678", "[phone]"),
    ("+1 (415) 555-0142", "[phone]"),
    ("(415) 555-0142", "[phone]"),
    ("415-555-0142", "[phone]"),
    ("415.555.0142", "[phone]"),
    ("1-800-555-0199", "[phone]"),
    ("call +44 20 7946 0958 30000 ms", "call [phone] 30000 ms"),
    # phones in national form (found in a review: these reached every artifact)
    ("Rückruf 0151 23456789 bitte", "Rückruf [phone] bitte"),
    ("0151-23456789", "[phone]"),
    ("030/1234567", "[phone]"),
    ("020 7946 0958.", "[phone]."),
    ("mobile 07700 900123", "mobile [phone]"),
    ("Tel. (030) 1234567", "Tel. [phone]"),
    ("0049 30 1234567", "[phone]"),
    # credentials
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln failed", "Authorization: Bearer [token] failed"),
    ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc_DEF-123 expired", "token [token] expired"),
    ("key sk-abcdef1234567890abcdef rejected", "key [token] rejected"),
    ("sk-proj-AbCdEfGhIjKlMnOpQrStUv", "[token]"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123", "[token]"),
    ("AKIAIOSFODNN7EXAMPLE", "[token]"),
    # Found in a security audit: today's OpenAI and Anthropic keys hold "_" and "-", and were shown whole
    # (sk-proj-, sk-svcacct-) or with their tail (sk-ant-); so were Slack app tokens and webhook URLs.
    ("401 for sk-proj-riGp-58WAm_dX3a5IDnOdcdbWB2dC4-DSDC6Lc1mx_LpQ2yMK-Ye9FZ1w", "401 for [token]"),
    ("sk-svcacct-YRvH_d1chTrqrHJYZwlD_awO4CEO-9C0RJCgjVuANM_Mv7kp", "[token]"),
    ("key sk-ant-api03-hMqBgNjjNMu1GqbeB6veW_zSmA3y-0b9Tk_EifkrvvBIQGVRRoLE_rnPf0jWsqR-oWjCkAA invalid",
     "key [token] invalid"),
    ("xapp-1-A0123456789-1234567890123-abcdef0123456789", "[token]"),
    ("POST https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/wXyZ0123456789abcdEFGH: 404",
     "POST https://hooks.slack.com/[token]: 404"),
    # cards: Luhn-valid, 13-19 digits, with or without separators
    ("card 4111 1111 1111 1111 expired", "card [card] expired"),
    ("4111-1111-1111-1111", "[card]"),
    ("5555555555554444", "[card]"),
    ("amex 378282246310005", "amex [card]"),
    ("diners 30569309025904", "diners [card]"),
    ("4111 1111 1111 1111 12 times", "[card] 12 times"),
    # IBANs with a valid checksum
    ("IBAN DE89 3704 0044 0532 0130 00 was rejected", "IBAN [iban] was rejected"),
    ("GB82WEST12345698765432", "[iban]"),
    ("gb82 west 1234 5698 7654 32", "[iban]"),
    ("FR1420041010050500013M02606.", "[iban]."),
    ("FR14 2004 1010 0505 0001 3M02 606 refused", "[iban] refused"),
    # Found in an adversarial audit: an IBAN written with dashes between its groups passed whole
    ("IBAN DE89-3704-0044-0532-0130-00 was rejected", "IBAN [iban] was rejected"),
    ("gb82-west-1234-5698-7654-32", "[iban]"),
    ("iban=DE89-3704-0044-0532-0130-00-retry", "iban=[iban]-retry"),
    # Found in a security audit: characters that cleaning removes or turns into spaces afterwards hid
    # PII from the patterns, and the cleaned artifacts then showed it whole.
    ("card 4111\x1b1111\x1b1111\x1b1111 mail ann\x1b@victim.example", "card [card] mail [email]"),
    ("phone +44\u202e20\u20667946\x000958", "phone [phone]"),
    ("4111 1111\n1111 1111", "[card]"),
    ("4111\u200b1111\u00ad1111\ufeff1111", "[card]"),
    ("4111\u00a01111\u00a01111\u00a01111", "[card]"),
    ("\uff14\uff11\uff11\uff11 1111 1111 1111", "[card]"),  # full-width digits
    # ... and gaps in the patterns
    ("IBAN DE89 3704 0044 0532 0130 00 and GB82WEST12345698765432 and FR1420041010050500013M02606",
     "IBAN [iban] and [iban] and [iban]"),
    ("4111.1111.1111.1111", "[card]"),
    ("06 12 34 56 78", "[phone]"),
    ("01.23.45.67.89", "[phone]"),
    ("jörg@müller.example wrote", "[email] wrote"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY x", "aws_secret_access_key=[secret] x"),
    ("key AIzaSyA1234567890abcdefghijklmnopqrstuv", "key [token]"),
    ("temporary ASIAQWERTYUIOPASDFGH expired", "temporary [token] expired"),
    ("google ya29.a0AfB_byC8Xw1-qkZ3nM4pL7rT9sV2 rejected", "google [token] rejected"),
    ("sendgrid SG.aBcDeFgHiJkLmNoPqRsTuV.wXyZ0123456789aBcDeFgHiJkLmNoPqRsTuVwXyZ01234 bad", "sendgrid [token] bad"),
    ("version ya29 and SG.1 and SG.short.x stay", "version ya29 and SG.1 and SG.short.x stay"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc and rk_test_4eC39HqLyjWDarjt", "[token] and [token]"),
    ("login failed: password=Hunter2Secret! for x", "login failed: password=[secret] for x"),
    ('{"api_key": "K-123456"}', '{"api_key": [secret]}'),
    ("GET /x?token=tok_live_abc123&api_key=K1234567&page=2", "GET /x?token=[secret]&api_key=[secret]&page=2"),
    # Found in a false-positive review (these leaked): URL passwords, quoted and encoded emails, more
    # credential names and key shapes, SSNs with other separators, non-breaking hyphens.
    ("postgresql://app:S3cr3t!@db:5432/prod", "postgresql://app:[secret]@db:5432/prod"),
    ("redis://:p4ssw0rd@redis:6379/0", "redis://:[secret]@redis:6379/0"),
    ("ann.o'neil@example.com wrote", "[email] wrote"),
    ("?email=bob%40example.com", "?email=[email]"),
    ("+1\u2011415\u2011555\u20112671", "[phone]"),
    ("ssn 123 45 6789", "ssn [ssn]"),
    ("Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "Authorization: Token [token]"),
    ("Set-Cookie: sessionid=38afes7a8; Path=/", "Set-Cookie: sessionid=[secret]; Path=/"),
    # the name run on into the word: camelCase JSON, csrftoken, session cookies (they passed whole; a leak audit)
    ('{"accessToken": "abcDEF1234567890ghij", "refreshToken":"r1a2b3c4d5e6"}',
     '{"accessToken": [secret], "refreshToken":[secret]}'),
    ("Cookie: JSESSIONID=ABCDEF1234567890ABCDEF12; PHPSESSID=k3j4h5g6f7d8; csrftoken=xyzXYZ0987654321abc",
     "Cookie: JSESSIONID=[secret]; PHPSESSID=[secret]; csrftoken=[secret]"),
    ("Cookie: connect.sid=s%3AabcDEF1234567890ghij.sig", "Cookie: connect.sid=[secret]"),
    ('dbPassword=hunter2 {"newPassword": "abc"}', 'dbPassword=[secret] {"newPassword": [secret]}'),
    ("DB_PASS=hunter22x and --password hunter22x", "DB_PASS=[secret] and --password [secret]"),
    # A known gap until now: a short or plain value given as a password passed (the credential rule
    # wants 8 characters and a digit)
    ("login failed: password=abc for x", "login failed: password=[secret] for x"),
    ("pwd=letmein; DB_PASSWORD=hunter2", "pwd=[secret]; DB_PASSWORD=[secret]"),
    ("Password: hunter2 rejected", "Password: [secret] rejected"),
    ('{"user": "bob", "password": "abc"}', '{"user": "bob", "password": [secret]}'),
    ("run --password abc1 now", "run --password [secret] now"),
    ("glpat-abcdefghij0123456789 npm_abcdefghijklmnopqrstuvwxyz0123456789", "[token] [token]"),
    ("appelez le 06 12 34 56 78 svp", "appelez le [phone] svp"),
    # Found in a re-check: IBANs written back to back, and a Brazilian number.
    ("DE89370400440532013000GB82WEST12345698765432", "[iban][iban]"),
    ("BR (11) 91234-5678", "BR [phone]"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY----- after", "[private-key] after"),
    ("-----BEGIN PRIVATE KEY----- MIIEvQIBADANBg (truncated", "[private-key]"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA== sent", "Authorization: Basic [token] sent"),
    ("AUTHORIZATION: BEARER abcDEF1234567890ghijKLMN, BASIC dXNlcjpwYXNzd29yZA==",
     "AUTHORIZATION: BEARER [token], BASIC [token]"),
    # US SSNs
    ("ssn 123-45-6789.", "ssn [ssn]."),
    ("078-05-1120", "[ssn]"),
    # IP addresses
    ("from 192.168.10.24:8080", "from [ip]:8080"),
    ("10.0.0.1.", "[ip]."),
    ("v6 2001:db8::ff00:42:8329 and fe80::1%eth0", "v6 [ip] and [ip]%eth0"),
    ("::ffff:10.0.0.1", "[ip]"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[ip]"),
    # the host of a URL, which the "/" before a version ("Chrome/120.0.0.0") let through (a leak audit)
    ("connect to http://203.0.113.45:8080 refused", "connect to http://[ip]:8080 refused"),
    ("GET https://198.51.100.7/api/v1 failed", "GET https://[ip]/api/v1 failed"),
    ("redis://203.0.113.45:6379", "redis://[ip]:6379"),
    # after a line break or tab written as an escape (JSON, a repr): the "n" of "\n" hid them (a leak audit)
    ('{"error": "line1\\n4111 1111 1111 1111"}', '{"error": "line1\\n[card]"}'),
    ('"call\\n415-555-0142\\r\\n030/1234567"', '"call\\n[phone]\\r\\n[phone]"'),
    ("ssn\\n123-45-6789\\tfrom\\t203.0.113.45\\n2001:db8::1", "ssn\\n[ssn]\\tfrom\\t[ip]\\n[ip]"),
    ("iban:\\nDE89370400440532013000", "iban:\\n[iban]"),
    # several in one message
    ("jane@example.com paid with 4111111111111111 from 8.8.8.8",
     "[email] paid with [card] from [ip]"),
    # Found in an adversarial audit: addresses written out to dodge scrapers passed whole. A bracketed "at"
    # says so on its own; a bare " at " only with the domain's dots written as words and a common TLD last.
    ("mail john at example dot com please", "mail [email] please"),
    ("john [at] example [dot] com", "[email]"),
    ("john(at)example.com", "[email]"),
    ("ann(at)example(dot)org", "[email]"),
    ("JOHN AT EXAMPLE DOT COM", "[email]"),
    ("jane dot doe at mail dot example dot co dot uk", "[email]"),
    ("j.doe {at} example {dot} de, thanks", "[email], thanks"),
    ("reach me at john at example dot com", "reach me at [email]"),
    # Found in a leak audit: a quoted value holding "&", ",", ";" or a space was not taken at all, and a phone
    # number with an extension passed whole ("x12" after it)
    ('{"password": "ab&cdefg1"}', '{"password": [secret]}'),
    ('{"password": "correct horse battery"}', '{"password": [secret]}'),
    ("{'pwd': 'a,b;c1234'}", "{'pwd': [secret]}"),
    ('{"client_secret": "aB3&dEf9Gh1x"}', '{"client_secret": [secret]}'),
    ('{"token": "abc,def123456"}', '{"token": [secret]}'),
    ('password="p@ss w0rd" user=x', "password=[secret] user=x"),
    ("call +1-415-555-0132x12 now", "call [phone] now"),
    ("call 415-555-0132 ext. 12", "call [phone]"),
    ("call +44 20 7946 0958 ext 1234", "call [phone]"),
    ("(415) 555-0132 x7", "[phone]"),
    # Found in an adversarial audit: an AWS secret access key (40 base64 characters) passed whole after a cue
    # without "=" or ":", and after the access key id it pairs with; the id itself was already [token].
    ("aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws_secret_access_key [secret]"),
    ("secret key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY rejected", "secret key: [secret] rejected"),
    ('AWS Secret Access Key "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', 'AWS Secret Access Key "[secret]"'),
    ("AWS wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "AWS [secret]"),
    ("--aws-secret-access-key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "--aws-secret-access-key [secret]"),
    ("AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "[token] [secret]"),
    ("creds AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "creds [token]:[secret]"),
    ("(ASIAQWERTYUIOPASDFGH, wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY)", "([token], [secret])"),
    ('{"AccessKeyId": "ASIAQWERTYUIOPASDFGH"}', '{"AccessKeyId": "[token]"}'),
    ("Credential=AKIAIOSFODNN7EXAMPLE/20261128/us-east-1/s3/aws4_request",
     "Credential=[token]/20261128/us-east-1/s3/aws4_request"),
    # Found in an adversarial audit: an API key's name with a space, or a space instead of "=" or ":", passed
    # the value whole; after the space a value needs 16+ letters and digits in a row to be taken.
    ("apikey a1B2c3D4e5F6g7H8i9 rejected", "apikey [secret] rejected"),
    ("api key: a1b2c3d4e5f6g7h8i9j0 invalid", "api key: [secret] invalid"),
    ("Invalid API key 9f8e7d6c5b4a39281706ffee", "Invalid API key [secret]"),
    ("Incorrect API key provided: a1b2c3d4e5f6g7h8i9j0k1.", "Incorrect API key provided: [secret]."),
    ("X-Api-Key 3fa85f64a1b2c3d4e5f60718 denied", "X-Api-Key [secret] denied"),
    ("secret key a1b2c3d4e5f6g7h8i9 and client secret Zx81aQ92bW73cE64dR55", "secret key [secret] and client secret [secret]"),
    ("token a1B2c3D4e5F6g7H8i9", "token [token]"),
    ("refresh token 0a1b2c3d4e5f6a7b8c9d expired", "refresh token [token] expired"),
    # Found in a leak audit: an unquoted value ended at "&", "," or ";", so its tail showed; it runs on unless a
    # space or a next field ("&page=2", "; Path=/") follows
    ("Password: Tr0ub4dor&3", "Password: [secret]"),
    ("login failed: password=Tr0ub4dor&3 for x", "login failed: password=[secret] for x"),
    ("Password: Troubador&3 rejected", "Password: [secret] rejected"),
    ("pwd=abc,de;f1 user=x", "pwd=[secret] user=x"),
    ("api_key: Abcd1234efgh&tail9 x", "api_key: [secret] x"),
    ("?password=hunter2&amp;page=2", "?password=[secret]&amp;page=2"),
    # Found in a leak audit: "@" escaped as HTML, JSON or Python does passed whole
    ("bounce for jane&#64;example.com", "bounce for [email]"),
    ("<a>JANE&#X40;EXAMPLE.ORG</a>", "<a>[email]</a>"),
    ("to jane.doe&commat;mail.example.co.uk;", "to [email];"),
    ('{"to": "jane\\u0040example.com"}', '{"to": "[email]"}'),
    ('{"error": "bad address \\\\u0040 jane\\\\u0040example.de"}', '{"error": "bad address \\\\u0040 [email]"}'),
    ("repr 'tom\\x40example.org'", "repr '[email]'"),
    ("mailto:jane%40example.com", "mailto:[email]"),
    # Found in a leak audit: a zero-padded dotted quad passed (ipaddress refuses it)
    ("from 203.000.113.077 refused", "from [ip] refused"),
    ("connect to http://010.001.002.003:8080/x", "connect to http://[ip]:8080/x"),
    ("peer ::ffff:198.051.100.007", "peer [ip]"),
    # Found in a leak audit: a credential written percent-encoded ("=" as %3D), as in a URL inside a query, passed
    ("GET /login?next=%2Fcb%3Fapi_key%3DAbc12345678%26page%3D2 302", "GET /login?next=%2Fcb%3Fapi_key%3D[secret]%26page%3D2 302"),
    ("body password%3Dhunter2 rejected", "body password%3D[secret] rejected"),
    ("state=a%26DB_PASSWORD%3Dletmein&x=1", "state=a%26DB_PASSWORD%3D[secret]&x=1"),
    ("%7B%22password%22%3A%22hunter2%22%7D", "%7B%22password%22%3A%22[secret]%22%7D"),
    ("q=Password%3A+Tr0ub4dor+x", "q=Password%3A+[secret]+x"),
    ("access_token%3deyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "access_token%3d[secret]"),
    # Found in a leak audit: encoded twice ("%" as %25), as in a URL nested in a URL's query, it passed
    ("api_key%253DAbc123secret", "api_key%253D[secret]"),
    ("GET /r?u=%2Flogin%3Fnext%3D%252Fcb%253Fapi_key%253DAbc12345678%2526page%253D2 302",
     "GET /r?u=%2Flogin%3Fnext%3D%252Fcb%253Fapi_key%253D[secret]%2526page%253D2 302"),
    ("body password%253Dhunter2 rejected", "body password%253D[secret] rejected"),
    ("%257B%2522password%2522%253A%2522hunter2%2522%257D", "%257B%2522password%2522%253A%2522[secret]%2522%257D"),
    ("password%25253Dhunter2", "password%25253D[secret]"),
    # Found in a leak audit: after an encoded "=" an encoded space ended the value, whose other words showed; a
    # form's value runs to its field's end (an encoded "&"), spaces and all. After ":" (a header, a sentence)
    # a space ends it, as in plain text: "q=Password%3A+[secret]+x" above.
    ("password%3Dcorrect%20horse%20battery", "password%3D[secret]"),
    ("x?password%3Dcorrect%20horse%20battery%26next%3D1 302", "x?password%3D[secret]%26next%3D1 302"),
    ("q=password%3Dcorrect+horse+battery&x=1", "q=password%3D[secret]&x=1"),
    ("password%253Dcorrect%2520horse", "password%253D[secret]"),
    ("body password%3Dhunter2%20 rejected", "body password%3D[secret]%20 rejected"),
    ("%7B%22password%22%3A%22correct%20horse%22%7D", "%7B%22password%22%3A%22[secret]%22%7D"),
    ("password=correct%20horse", "password=[secret]"),
    ("password%3Dab%2Bcd", "password%3D[secret]"),
    ("password%3D%20%20hunter2", "password%3D%20%20[secret]"),
    # Found in a leak audit: Databricks (dapi + 32 hex) and Twilio API keys (SK + 32 hex) passed whole; the
    # other common shapes are pinned beside them
    ("databricks 403 for dapi0123456789abcdef0123456789abcdef", "databricks 403 for [token]"),
    ("DATABRICKS_TOKEN dapi0123456789abcdef0123456789abcdef-2 expired", "DATABRICKS_TOKEN [token] expired"),
    ("twilio key SK0123456789abcdef0123456789abcdef: 401", "twilio key [token]: 401"),
    ("hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567 rk_live_4eC39HqLyjWDarjtT1zdp7dc", "[token] [token]"),
]

UNCHANGED = [
    "timeout after 30000 ms",
    "2026-11-28",
    "2026-11-28T10:15:30Z",
    "12:30:45",
    "at 10:15:30.123+01:00",
    "HTTP 503 after 3 retries",
    "epoch 1732540800 and 1732540800123",
    "order 12345678901234567890",
    "4111-1111-1111-1112",  # fails Luhn
    "1234 5678 9012 3456",  # fails Luhn
    "NL00 ABNA 0417 1643 00",  # fails mod 97
    "NL00-ABNA-0417-1643-00",
    "build-DE89-2026-11-28",
    "ZZ89 3704 0044 0532 0130 00x",  # no such country, and no card-like run
    "999.1.2.3",  # not an address
    "version v1.2.3.4",
    "std::vector<int>",
    "MAC 00:1A:2B:3C:4D:5E",
    "amount $4,111,111.00",
    "gpt-4o-2024-08-06",
    "550e8400-e29b-41d4-a716-446655440000",
    "support-bot@v3",
    "tech-triage@2026.11",
    "user@localhost",
    '{"email": "none", "host": "example.com"}',
    'agent "support-bot"@v3 failed',
    'said "see you"@ noon',
    "ticket #4567, see KB-1234-5678",
    "retry 0 of 3",
    "took 0.123456789 s",
    "queue 01-2026 batch 0-5",
    "Bearer auth failed",
    "risk-assessment-module",
    "cache key=user:42 miss",  # a key that is no credential
    "auth failed for user",
    "auth: failed for user",
    # Found in a false-positive review (these were redacted): a word after a credential's name, versions
    # as addresses, addresses that are nobody's, lists of pairs, a barcode, SSNs never issued.
    "Secret: not set",
    "Password: must not be empty",
    "Invalid signature: expected sha256, got sha1",
    "Failed to refresh token: invalid_grant",
    "token: 4096 exceeds limit",
    "api_key: null",
    "password=${DB_PASSWORD}",
    "password=required",
    '{"password": "missing"}',
    "pass=*****",
    "bypass=true",
    "bypass=abc",
    "compass: north",
    "ssid=HomeNet",
    "accessToken: expired",
    "tests pass=3",
    "Basic authentication is disabled",
    "Bearer authentication required",
    "xoxo-gift-card-campaign failed",
    "rk-2026-11-28-nightly-backup-job-v2 failed",
    "rk-Migration-Step-2026-11-28-Nightly-Backup",
    "pk-user-account-mapping-service-v2 timeout",
    "sig=sha256 algorithm not supported",
    "UA Chrome/120.0.0.0 Safari",
    "Version 3.2.1.4",
    "Android 14.0.0.12",
    "Version 10.0.0.1-beta",
    "listening on 0.0.0.0:8080",
    "::1",
    "db at 127.0.0.1:5432",
    "Batch 01 02 03 04 05 06",
    "Hex dump: 06 12 34 56 78 9a",
    "EAN 5901234123457",
    "ssn 000-00-0000",
    "token expired, refresh it",
    "version 2026.11.28.01",
    # what an address written out in words must not take ("at" and "dot" are ordinary words)
    "timeout at step 3",
    "behind by at least 3 dot releases",
    "connection reset at api.example.com:443",
    "failed at example dot py line 3",
    "look at the dot com bubble",
    # a known false positive: "at" as a word, and "dot com" before a noun is the phrase, not a TLD
    "meet at noon dot com bubble",
    "we met at noon dot com boom era",
    '{"password": "required"}',
    "KeyError at index 3 (at) parse",
    # 40 characters that an AWS secret key could be, without its cue or without both cases of letters
    "commit 3f786850e387550fdab836ed7e6dc881de23001b failed",
    "AWS deploy 3F786850E387550FDAB836ED7E6DC881DE23001B failed",
    "AWS 3f786850e387550fdab836ed7e6dc881de23001b",
    "secret rotation: sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "request id wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS request id dGhpcyBpcyBhIHJlcXVlc3QgaWQgZm9yIHRlc3Q0",
    # a credential's name followed by words, counts, versions or paths
    "api key expired",
    "API key missing for tool search_kb",
    "API key provided: none",
    "apikey header not set",
    "api key v2 deprecated since 2026-11-28",
    "token limit 4096 exceeded",
    "token count 128000 over budget",
    "secret key file /etc/ssl/private/server2048.key not found",
    "api key gpt-4o-mini-2024-07-18 quota",
    "x-amz-request-id: 4442587FB7D0A2F9, x-amz-id-2: vlR7PnpV2Ce81l0PRw6jlUpck7Jo5ZsQjryTjKlc5aLWGVHPZLj5NeC6qMa0emYBDXOo6QBU0Wo=",
    "",
]


# Whole error messages as agents log them, holding no PII: what the patterns added for written-out emails, bare
# AWS secret keys, spaced API keys and dashed IBANs must not take (an adversarial audit's false-positive list).
ORDINARY_ERRORS = [
    'Traceback (most recent call last):\n  File "/app/agent/tools.py", line 212, in call\n    resp = client.post(url)\n'
    "  File \"/usr/lib/python3.12/site-packages/httpx/_client.py\", line 1054, in post\nhttpx.ReadTimeout: timed out",
    "tool_timeout: lookup_order timed out at step 3 after 30000 ms",
    "conversation 550e8400-e29b-41d4-a716-446655440000 aborted at turn 12",
    "commit 3f786850e387550fdab836ed7e6dc881de23001b, artifact sha256 "
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 mismatch",
    "HTTP 429 from upstream; request id: Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo, retry after 2 s",
    "RateLimitError: request id req_01HZX3K9Q2W8E7R6T5Y4U3I2O1 (x-request-id: dGhpcyBpcyBhIHJlcXVlc3Q=)",
    "GET https://api.example.com/v2/orders?page=2&sort=desc returned 404 at /v2/orders",
    "connect to https://docs.example.org/api/v1/keys timed out",
    "upgrade from 1.2.3 to 2.0.0-rc.1 failed: client is at least 3 dot releases behind",
    "model gpt-4o-2024-08-06 at temperature 0.7 refused: content_filter",
    "ValueError at line 42 in parse_response (at position 1337)",
    "secret manager unavailable: AWS request id 4442587FB7D0A2F9 in eu-west-1",
    "api key rotation scheduled for 2026-11-28; token budget 128000 exceeded by 4096",
    # a password's or token's name before a word and a separator: a message, not a value
    "Password: must not be empty; min length 8, max 64",
    "Password: TOO_SHORT;min=8",
    "password=required, 3 attempts left",
    "Password: expired&reset=1",
    "token: 4096,8192 tokens over limit; retry",
    "auth: ok, user=bob; role=admin",
    # escapes of "@" without an address around them
    "template error: use &#64;mentions or &commat; in example.com docs",
    "JSON escape \\u0040 is not allowed here; see docs.example.com",
    "user\\u0040localhost refused",
    "<p>&copy; 2026 example.com &amp; partners</p>",
    # zero-padded quads that are versions, nobody's addresses, or no address
    "listening on 000.000.000.000:8080, health at 127.000.000.001:9000",
    "upgraded to Version 10.00.00.01 (firmware 02.10.00.07)",
    "build v01.02.03.04 failed; release 2026.011.028.001 rolled back",
    "invalid address 256.000.000.001",
    # an encoded "=" after a credential's name before a placeholder, a count or a word, or after another name
    "GET /cb?state=api_key%3Dnull%26password%3Drequired 400",
    "redirect%3Dhttps%3A%2F%2Fdocs.example.com%2Fauth%3Fsig%3Dsha256 failed",
    "q=token%3D4096%20exceeds%20limit",
    "filter=cache_key%3Duser42%26sort%3Ddesc",
    "q=token%253D4096%2520exceeds%2520limit",
    "GET /cb?state=api_key%253Dnull%2526password%253Drequired 400",
    "progress 100%25 of api_key%2520rotation",
    # hex digests and short ids near those prefixes
    "DAPI stain run 12 of dapi-pipeline failed; etag 0123456789abcdef0123456789abcdef",
    "SKU SK12345 out of stock (md5 d41d8cd98f00b204e9800998ecf8427e)",
    "dapi0123456789abcdef is too short",
]


@pytest.mark.parametrize("text", ORDINARY_ERRORS)
def test_leaves_ordinary_error_messages(text: str) -> None:
    assert Redactor().redact(text) == text


# A value with a separator inside is judged whole: under 3 characters before the first "&", "," or ";" the rules
# read only that part and took nothing ("pwd=ab&cd" showed the password). "secret: ab&cdef" stays as
# "secret: abcdef" does: no digit and under 20 characters is a word to the credential rule, "&" or not.
@pytest.mark.parametrize(("text", "expected"), [
    ("pwd=ab&cd", "pwd=[secret]"),
    ("password=ab&cd12", "password=[secret]"),
    ("login failed: pwd=a&b for x", "login failed: pwd=[secret] for x"),
    ("pwd=ab;c user=x", "pwd=[secret] user=x"),
    ("secret: ab&cdef12 x", "secret: [secret] x"),
    ("token=ab,cd1234567&page=2", "token=[secret]&page=2"),
    ("session=a1;b2c3d4e5f6 ok", "session=[secret] ok"),
    ("secret: ab&cdef", "secret: ab&cdef"),
    ("pwd=ab&page=2", "pwd=ab&page=2"),
])
def test_a_value_is_judged_whole_across_separators(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


def test_a_card_number_glued_to_an_id_is_kept() -> None:
    """A known gap, kept on purpose: 16 digits after a dash are an id far more often than a card. Measured on
    1,000,000 random 16-digit ids: Luhn alone takes 10.0%, Luhn and a card network's IIN range (Visa, Mastercard,
    Discover, JCB, UnionPay) 2.3%, Visa and Mastercard only 2.0%; only Visa (1.0%) comes near 1% and it misses
    the rest. "Not after a known id prefix" cannot help: conv- is one. A card after a space or a word is [card]."""
    assert Redactor().redact("conv-4012888888881881 failed") == "conv-4012888888881881 failed"
    assert Redactor().redact("card 4012888888881881 failed") == "card [card] failed"


@pytest.mark.parametrize(("text", "expected"), REDACTED)
def test_redacts(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_leaves_ordinary_text(text: str) -> None:
    assert Redactor().redact(text) == text


@pytest.mark.parametrize(("text", "_"), REDACTED)
def test_is_idempotent(text: str, _: str) -> None:
    once = Redactor().redact(text)
    assert Redactor().redact(once) == once


def test_none_stays_none() -> None:
    assert Redactor().redact(None) is None


def test_disabled_changes_nothing() -> None:
    text = "jane@example.com 4111 1111 1111 1111 CUST-99"
    assert Redactor(enabled=False, extra_patterns={"customer": r"CUST-\d+"}).redact(text) == text


def test_extra_patterns_run_first_and_are_named() -> None:
    redactor = Redactor(extra_patterns={"customer": r"CUST-\d{6}", "ticket": r"TCK-[A-Z]{3}"})
    assert redactor.redact("CUST-123456 TCK-ABC jane@example.com") == "[customer] [ticket] [email]"
    # the customer id contains a phone-shaped run; the user's pattern takes it whole
    assert Redactor(extra_patterns={"acct": r"ACCT 415-555-0142"}).redact("ACCT 415-555-0142") == "[acct]"


def test_callable() -> None:
    assert Redactor()("ssn 123-45-6789") == "ssn [ssn]"


def _luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        if _luhn(prefix + check):
            return prefix + check
    raise AssertionError


@given(st.sampled_from("3456"), st.lists(st.integers(0, 9), min_size=14, max_size=14),
       st.sampled_from(["", " ", "-"]))
def test_any_luhn_valid_16_digit_card_is_redacted(first: str, digits: list[int], sep: str) -> None:
    number = _luhn_complete(first + "".join(map(str, digits)))
    grouped = sep.join(number[i:i + 4] for i in range(0, 16, 4))
    assert Redactor().redact(f"paid with {grouped} today") == "paid with [card] today"


@given(st.integers(0, 99_999), st.sampled_from(["ms", "s", "tokens", "retries", ""]))
def test_small_numbers_survive(value: int, unit: str) -> None:
    text = f"failed after {value} {unit}".strip()
    assert Redactor().redact(text) == text


def _no_digit(ch: str) -> bool:
    return not any(c.isdigit() for c in unicodedata.normalize("NFKC", ch))  # "²" folds to "2"


@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",), blacklist_characters="@:=").filter(_no_digit),
               max_size=80))
def test_text_without_digits_or_at_signs_survives(text: str) -> None:
    """Text without PII comes back as it was, not even normalised. A capitalised word after a name's cue
    ("Dear Ab", "Mr Ab") is a name: such text is left to the cue tests."""
    assume(not re.search(r"(?i)name|holder|\b(?:mr|mrs|ms|mx|dr|prof|herr|frau|mme|mlle|dear|this is)\b", text))
    assert Redactor().redact(text) == text


@pytest.mark.parametrize(("text", "shown"), [
    # Found in a rendering audit: normalising every text removed the zero-width joiners of emoji and of
    # Persian and Indic words, so agent "👩\u200d💻-helper" became "👩💻-helper" in report.json.
    ("👩\u200d💻-helper", "👩\u200d💻-helper"),
    ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f3f3\ufe0f\u200d\U0001f308",
     "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 \U0001f3f3\ufe0f\u200d\U0001f308"),
    ("Ｔｏｋｙｏ desk", "Ｔｏｋｙｏ desk"),
    # ... while a joiner, a line break or full-width digits still hide nothing
    ("card 4111\u200d1111 1111\n1111 by 👩\u200d💻", "card [card] by 👩💻"),
    ("call ０２０ ７９４６ ０９５８", "call [phone]"),
    ("line one\r\n\tline two", "line one line two"),
    # found in a re-check: characters that render as nothing, a combining mark on a digit, other digits
    ("card 4111\u034f1111\u180e1111\u061c1111", "card [card]"),
    ("card 4\u0301111 1111 1111 1111", "card [card]"),
    ("4111\u28001111\u28001111\ufe0f1111 \u3164", "[card] "),  # text with PII is shown as the patterns read it
    ("call \u0660\u0666 \u0661\u0662 \u0663\u0664 \u0665\u0666 \u0667\u0668", "call [phone]"),
    ("caf\u0065\u0301-bot \u0661\u0662\u0663", "caf\u0065\u0301-bot \u0661\u0662\u0663"),  # no PII: as it was
])
def test_what_readers_see_of_event_text(text: str, shown: str) -> None:
    from agentdigest.render.prepare import clean_text

    assert clean_text(Redactor().redact(text) or "") == shown


@given(st.text(max_size=60))
def test_normalising_is_idempotent(text: str) -> None:
    assert normalise(normalise(text)) == normalise(text)
    assert Redactor().redact(Redactor().redact(text)) == Redactor().redact(text)


def test_placeholders_are_the_documented_ones() -> None:
    out = Redactor().redact("a@b.co +44 20 7946 0958 4111111111111111 GB82WEST12345698765432 123-45-6789 1.2.3.4")
    assert re.findall(r"\[(\w+)\]", out) == ["email", "phone", "card", "iban", "ssn", "ip"]


@pytest.mark.parametrize(("text", "shown"), [
    # Found in a scale audit: each of these, 100 KB long, took 2-14 s (the patterns restarted inside the run);
    # they hold no key and stay as they are, and a key at the start of such a run is still one.
    ("sk-" * 2000, "sk-" * 2000),
    ("xoxb-" * 2000, "xoxb-" * 2000),
    ("eyJab-" * 2000, "eyJab-" * 2000),
    ("key=sk-proj-" + "A1b2C3d4E5f6G7h8J9k0", "key=[token]"),
    ("sk-sk-sk-" + "A1b2C3d4E5f6G7h8J9k0 end", "[token] end"),
    ("'xoxb-1234-5678-abcdefghij'", "'[token]'"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig_nature-x", "jwt [token]"),
])
def test_crafted_runs_are_read_once(text: str, shown: str) -> None:
    assert Redactor().redact(text) == shown


def test_a_long_message_is_cut_before_redaction_and_never_shows_half_a_secret() -> None:
    """The patterns' time grows with the text, so a message is read up to READ_TEXT characters; the end of
    what they read is dropped, so a card cut in two at that point is not shown in part."""
    from agentdigest.render.prepare import MAX_TEXT, READ_TEXT, prepare
    from render_fixtures import make_report

    card = "4111 1111 1111 1111"
    cut_card = "x" * (READ_TEXT - 9) + " " + card + " tail"  # the cut falls inside the card
    long_card = "[boom] " * 200 + card + " " + "y" * 200_000
    data = make_report("engineering")
    rows = ({**data.failure_examples[0], "error_message": cut_card},
            {**data.failure_examples[0], "error_message": long_card})
    shown = [r["error_message"] for r in prepare(replace(data, failure_examples=rows)).failure_examples]
    assert "4111" not in shown[0] and shown[0].endswith("…") and len(shown[0]) <= MAX_TEXT
    assert "[card]" in shown[1] and "4111" not in shown[1] and len(shown[1]) <= MAX_TEXT


def test_keys_that_differ_only_by_what_cleaning_removes_stay_apart() -> None:
    """Found in a scale audit: "ag\\x00ent" and "agent" were two rows reading "agent"; a BOM and U+10FFFF
    reached every artifact (the PDF drew a missing-glyph box)."""
    from agentdigest.render.prepare import prepare
    from agentdigest.render.clipping import names
    from render_fixtures import make_report

    data = make_report("engineering")
    agents = tuple({**row, "agent_id": name} for row, name in zip(data.by_agent, ["agent", "ag\x00ent", "\ufeffbot\U0010ffff"]))
    examples = ({**data.failure_examples[0], "error_message": "\ufefftimeout\ufffe after 30 s\U0010ffff"},)
    out = prepare(replace(data, by_agent=agents, failure_examples=examples))
    assert [r["agent_id"] for r in out.by_agent[:3]] == ["agent", "ag\ufffdent", "\ufffdbot\ufffd"]
    assert out.failure_examples[0]["error_message"] == "timeout after 30 s"
    assert names([None, "", "  ", "(none)", "agent"], 40) == ["(none)", "(blank)", "(blank)", '"(none)"', "agent"]


# A person's name or a personal record's number, where a cue says that is what follows: the cue stays, the
# name or the digits go. Names are capitalised words in any script; ids are 5+ digits.
CUED = [
    # names after "my name is" and similar
    ("Hi, my name is Jane Doe and I need help", "Hi, my name is [name] and I need help"),
    ("my name is Jane, thanks", "my name is [name], thanks"),
    ("My name's Łukasz Nowak.", "My name's [name]."),
    ("her name is Élodie", "her name is [name]"),
    ("MY NAME IS JANE DOE", "MY NAME IS [name]"),
    ("Name is Jean-Luc Picard, calling about", "Name is [name], calling about"),
    ("the customer's name is Ana María López", "the customer's name is [name]"),
    ("my name is Ludwig van Beethoven", "my name is [name]"),
    ("this is Jane Doe speaking", "this is [name] speaking"),
    # honorifics, with or without a dot, and initials
    ("Mr. Smith called twice", "Mr. [name] called twice"),
    ("Mrs Jane Doe", "Mrs [name]"),
    ("ask Ms. O'Neil", "ask Ms. [name]"),
    ("Ms. O’Brien", "Ms. [name]"),
    ("Dr. García", "Dr. [name]"),
    ("Dr. J. R. McDonald asked", "Dr. [name] asked"),
    ("Herr Müller und Frau Schröder", "Herr [name] und Frau [name]"),
    ("Dear Jane,", "Dear [name],"),
    ("Dear Mr. Smith,", "Dear Mr. [name],"),
    # labelled fields, JSON included (the quotes stay)
    ("customer name: Jane Doe", "customer name: [name]"),
    ("caller_name=Jane Doe", "caller_name=[name]"),
    ("full name: Ana María López", "full name: [name]"),
    ("first_name=Jane&last_name=Doe", "first_name=[name]&last_name=[name]"),
    ("last name: Doe", "last name: [name]"),
    ('{"customer_name": "Jane Doe", "tool": "lookup_order"}', '{"customer_name": "[name]", "tool": "lookup_order"}'),
    ('{"firstName":"Łukasz","surname":"Żółć"}', '{"firstName":"[name]","surname":"[name]"}'),
    ("cardholder: JANE DOE", "cardholder: [name]"),
    # digits after an account or record cue, with the qualifiers written in front of them
    ("account 83749201 locked", "account [id] locked"),
    ("acct #1234567", "acct #[id]"),
    ("account number: 1234 5678", "account number: [id]"),
    ("account no. 998877", "account no. [id]"),
    ("Account Nr. 12-345-678", "Account Nr. [id]"),
    ("customer id 99887766", "customer id [id]"),
    ("member id: 123456789", "member id: [id]"),
    ("policy number 55512345", "policy number [id]"),
    ("patient id=12345678", "patient id=[id]"),
    ("passport no. 123456789", "passport no. [id]"),
    ("social security number 078051120", "social security number [id]"),
    ('{"account_id": 12345678}', '{"account_id": [id]}'),
    ('{"customerId": "99887766"}', '{"customerId": "[id]"}'),
    ("account 83749201 7 retries", "account [id] 7 retries"),
    # Found in a column-types audit: the number after an id was taken into it ("customer [id] error", the
    # HTTP status lost), and one glued to a unit kept the whole id ("customer 123456 200ms" unchanged). A
    # group after a space is the id's only while it has under 5 digits or repeats its groups' length.
    ("customer 123456 500 error", "customer [id] 500 error"),
    ("customer 123456 200ms", "customer [id] 200ms"),
    ("account 83749201 500 retries in 3000 ms", "account [id] 500 retries in 3000 ms"),
    ("account 123456 789", "account [id] 789"),  # 6 then 3 is no layout of grouped digits: a number of its own
    ("account 12345 6789", "account [id] 6789"),
    ("account 123456 7890abc", "account [id] 7890abc"),
    ("account 123 456 789", "account [id]"),  # groups of one length
    ("account 1234 5678 9012 timeout", "account [id] timeout"),
    ("account 12 345 678", "account [id]"),  # under 5 digits, the id takes the next group
    ("account 123 4567", "account [id]"),
    ("account number: 1234 5678 500", "account number: [id] 500"),
    ("customer 123456 123456ms", "customer [id] 123456ms"),  # the longest end that ends a number
    ("Account Nr. 12-345-678 404", "Account Nr. [id] 404"),
    # a word a validation message opens with is a name when no message follows it
    ("last_name: Field", "last_name: [name]"),
    ("last_name=Field first_name=Sally", "last_name=[name] first_name=[name]"),
    ("last name: Field, Sally", "last name: [name], Sally"),
    # Found in a leak audit: a form's encoded space ended the name, and the surname showed
    ("customer_name=Jane+Roe", "customer_name=[name]"),
    ("first_name=Jane%20Roe&last_name=Doe", "first_name=[name]&last_name=[name]"),
    ("?caller_name=Ludwig+van+Beethoven&x=1", "?caller_name=[name]&x=1"),
    ("full_name=Jean-Luc+Picard+speaking", "full_name=[name]+speaking"),
]

CUED_UNCHANGED = [
    # a name needs a cue, a capital and no placeholder
    "tool name: search_kb",
    "model name: gpt-4o",
    '{"name": "lookup_order"}',
    "name: Search",
    "file name: Report.pdf",
    "host name: Web01",
    "the bucket name is Archive",
    "username: Jane",  # a login, not a name (documented)
    "user name: Admin",
    "my name is required",
    "customer name: null",
    "customer_name=None",
    "full name: N/A",
    "first_name=${NAME}",
    "last name: <name>",
    "customer name: ***",
    '{"customer_name": "Unknown"}',
    "customer name: REDACTED",
    "Dear customer",
    "Dear Customer,",
    "Dear Sir or Madam",
    "Dear Valued Customer",
    "Dear Team",
    "Mr. and Mrs.",
    "Mr. Mr. Mr.",
    "Dr. 42 said",
    "cache Miss Rate",
    "MS SQL Server",
    "this is Jane",
    "caller_name=jane_doe",
    "first_name=Jane2",
    # a tool's validation error about a name field (found in an audit: "first_name: [name] field is required.")
    "first_name: This field is required.",
    "last_name: Ensure this field has no more than 150 characters.",
    "customer_name: Input should be a valid string",
    "first_name: String should have at least 1 character",
    "first_name: Expected string, received null",
    "last_name: Field may not be null.",
    "first_name: Field required",
    "full_name: Length must be between 1 and 50.",
    "customer name: Must not be empty",
    "first_name: Enter a valid value.",
    "cardholder: Value too long",
    # an id needs a cue right before it and 5+ digits
    "account 7 retries",
    "account 1234",
    "attempt 123456",
    "order 12345678",
    "account: locked",
    "timeout after 30000 ms",
    "account created 2026-11-28",
    "account 2026-11-28",
    "policy 30000 ms",
    "retry policy 30000",
    "customer_count=123456",
    "accounting 123456",
    "account 12345-beta",
    "member 12345.67 USD",
    "customer 1234 200ms",  # 4 digits, and the 200 is a duration: no id
    # a form-encoded validation message about a name field, and a bare name= (a tool's)
    "first_name=This+field+is+required",
    "customer_name=Input%20should%20be%20a%20valid%20string",
    "name=Jane+Roe",
    "tool name: Search+Index",
]


@pytest.mark.parametrize(("text", "expected"), CUED)
def test_redacts_names_and_ids_after_a_cue(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected
    assert Redactor().redact(expected) == expected


@pytest.mark.parametrize("text", CUED_UNCHANGED)
def test_leaves_uncued_names_and_numbers(text: str) -> None:
    assert Redactor().redact(text) == text


@pytest.mark.parametrize(("text", "expected"), [
    # an id another kind recognises keeps that kind's tag
    ("account 4111 1111 1111 1111", "account [card]"),
    ("account DE89 3704 0044 0532 0130 00", "account [iban]"),
    ("customer id +44 20 7946 0958", "customer id [phone]"),
    ("customer name: jane@example.com", "customer name: [email]"),
    # the user's patterns run first
    ("account ACCT-12345678", "account [acct]"),
])
def test_cued_kinds_run_after_the_others(text: str, expected: str) -> None:
    assert Redactor(extra_patterns={"acct": r"ACCT-\d+"}).redact(text) == expected


@pytest.mark.parametrize("text", [
    # Crafted runs: each cue restarts the pattern, and a run of cues must cost one read (measured by hand:
    # 1 MB of each redacts in well under a second; no timing here)
    "Mr. " * 2000,
    "Dear " * 2000,
    "account " * 2000,
    "my name is " * 2000,
    "customer_name=" * 2000,
    "account 1234-" * 2000,
    "x dot " * 2000,
    "x [dot] " * 2000,
    "aws_" * 2000,
    "secret" * 2000,
])
def test_runs_of_cues_hold_nothing(text: str) -> None:
    assert Redactor().redact(text) == text
