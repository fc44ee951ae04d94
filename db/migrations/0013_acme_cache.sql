-- What -acme-domain obtains from the ACME CA (golang.org/x/crypto/acme/
-- autocert's cache): the account key, each name's certificate with its
-- private key, and a challenge's token while it is pending. Kept here so
-- the appliance stays one file and a backup restores HTTPS with the chat.
CREATE TABLE acme_cache (
    key     TEXT    PRIMARY KEY,
    data    BLOB    NOT NULL,
    updated INTEGER NOT NULL -- Unix milliseconds
) STRICT;
