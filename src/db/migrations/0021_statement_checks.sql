-- A statement that carries its transaction's COMMIT with it (db/pipelined-postgres.ts,
-- LAST_STATEMENT) cannot leave a check to the code that reads its rows: by then the transaction has
-- committed. It checks inside the statement instead (`SELECT statement_check(<condition>, '<why>')`),
-- and a failed check fails the statement, so the COMMIT behind it rolls the transaction back.
CREATE FUNCTION statement_check(ok boolean, why text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION 'statement check failed: %', why;
  END IF;
  RETURN true;
END
$$;
