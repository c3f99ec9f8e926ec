-- Subject grants (GNAP `subject`, Open Payments auth-server 1.3.0): the client asks the account
-- holder to prove control of a wallet address of this server.

-- The wallet address URL the client asked about (the one sub_id, format "uri"); null when the grant
-- asks for access only. Such grants always need interaction.
ALTER TABLE grants ADD COLUMN subject_id text;
ALTER TABLE grants ADD CONSTRAINT grants_subject_interactive
  CHECK (subject_id IS NULL OR interact_id IS NOT NULL);

-- Who the identity step said is signed in: the wallet address URL the account holder controls.
-- subject_wallet_address_id is set only when that is the grant's own wallet address.
ALTER TABLE grants ADD COLUMN interact_signed_in_as text;
