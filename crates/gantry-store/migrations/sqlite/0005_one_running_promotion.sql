-- At most one promotion runs per environment. The store already starts one only when
-- none is running there; this index makes the database refuse a second all the same.
CREATE UNIQUE INDEX promotions_one_running ON promotions (project, environment)
    WHERE state = 'running';
