-- Run once by the postgres image on an empty data volume (docker-entrypoint-initdb.d).
-- One role and one database per service, as `make up` creates them locally. The
-- passwords are development defaults; compose.yaml passes the same ones to the services.
CREATE ROLE quartet_auth LOGIN PASSWORD 'quartet_auth_dev';
CREATE DATABASE quartet_auth OWNER quartet_auth;

CREATE ROLE quartet_todos LOGIN PASSWORD 'quartet_todos_dev';
CREATE DATABASE quartet_todos OWNER quartet_todos;

CREATE ROLE quartet_reports LOGIN PASSWORD 'quartet_reports_dev';
CREATE DATABASE quartet_reports OWNER quartet_reports;
