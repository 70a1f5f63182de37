-- api_error_maps_to_5xx (ERROR)
-- Detects PL/pgSQL functions in our own schemas (public, private, ...; not the
-- platform schemas, not pg_*, not extension members) whose body raises an error
-- that PostgREST 12 answers with HTTP 5xx: RAISE ... USING errcode = 'P0002',
-- RAISE SQLSTATE '55000', RAISE no_data_found, errcode = 'internal_error', and
-- SELECT ... INTO STRICT (P0002/P0003 when no or several rows come back).
-- Every function in public is an RPC, and private helpers run inside them (and
-- inside triggers and policies), so such an error reaches a client as an
-- outage (P0002 to P0004, XX, classes 08, 09, 25, 2D, 38, 39, 3B, 40, 53 to 58,
-- F0, HV, 21000, 42P17, PT5xx) even when the caller only passed a wrong id.
-- Mirrors workers/check/postgrest_status.py. Text analysis: comments are
-- dropped, string literals are kept whole, each statement is read on its own;
-- an errcode computed at run time and a bare RAISE (re-raise) are not judged.
with fns as (
    select
        p.oid,
        n.nspname || '.' || p.proname
            || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')' as signature,
        pg_catalog.regexp_replace(
            p.prosrc,
            $re$('(?:[^']|'')*')|--[^\n]*|/\*(?:[^*]|\*+[^*/])*\*+/$re$,
            '\1',
            'g'
        ) as body
    from pg_catalog.pg_proc p
    join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    join pg_catalog.pg_language l on l.oid = p.prolang
    where l.lanname = 'plpgsql'
        and n.nspname <> all(%(platform)s::text[])
        and n.nspname !~ '^pg_'
        and n.nspname <> 'information_schema'
        and not exists (
            select 1 from pg_catalog.pg_depend d
            where d.classid = 'pg_catalog.pg_proc'::regclass
                and d.objid = p.oid
                and d.deptype = 'e'
        )
),
statements as (
    select f.oid, f.signature, s.stmt[1] as stmt,
        pg_catalog.regexp_replace(s.stmt[1], $re$'(?:[^']|'')*'$re$, $re$''$re$, 'g') as masked
    from fns f
    cross join lateral pg_catalog.regexp_matches(f.body, $re$(?:[^;']|'(?:[^']|'')*')+$re$, 'g') as s (stmt)
),
raises as (
    -- the text after the statement's RAISE keyword (the first one outside a string literal)
    select st.oid, st.signature,
        pg_catalog.regexp_replace(st.stmt, $re$^(?:[^']|'(?:[^']|'')*')*?\mraise\M$re$, '', 'i') as tail
    from statements st
    where st.masked ~* $re$(^|\m(then|else|loop|begin)\M)\s*raise\M$re$
),
parsed as (
    select r.oid, r.signature, r.tail,
        pg_catalog.lower((pg_catalog.regexp_match(
            r.tail, $re$^\s*(debug|log|info|notice|warning|exception)\M$re$, 'i'))[1]) as level,
        pg_catalog.regexp_replace(
            r.tail, $re$^\s*(debug|log|info|notice|warning|exception)\M$re$, '', 'i') as rest
    from raises r
),
named as (
    select p.oid, p.signature,
        coalesce(
            (pg_catalog.regexp_match(p.rest, $re$^\s*sqlstate\s*'([^']*)'$re$, 'i'))[1],
            (pg_catalog.regexp_match(
                p.rest, $re$^(?:[^']|'(?:[^']|'')*')*?\merrcode\s*:?=\s*'([^']*)'$re$, 'i'))[1],
            case
                when p.rest ~* $re$^\s*(using\M|'|$)$re$ then null
                else pg_catalog.lower((pg_catalog.regexp_match(p.rest, $re$^\s*([a-z_][a-z0-9_$]*)$re$, 'i'))[1])
            end,
            'P0001'
        ) as raised
    from parsed p
    where coalesce(p.level, 'exception') = 'exception'
        and p.tail !~ $re$^\s*$$re$
    union all
    select f.oid, f.signature, 'into strict' as raised
    from fns f
    where pg_catalog.regexp_replace(f.body, $re$'(?:[^']|'')*'$re$, $re$''$re$, 'g')
        ~* $re$\minto\s+strict\M$re$
),
conditions (condition_name, sqlstate) as (
    -- PL/pgSQL condition names whose SQLSTATE PostgREST answers with 5xx
    values
        ('connection_exception', '08000'),
        ('sqlclient_unable_to_establish_sqlconnection', '08001'),
        ('connection_does_not_exist', '08003'),
        ('sqlserver_rejected_establishment_of_sqlconnection', '08004'),
        ('connection_failure', '08006'), ('transaction_resolution_unknown', '08007'),
        ('protocol_violation', '08P01'), ('triggered_action_exception', '09000'),
        ('cardinality_violation', '21000'), ('invalid_transaction_state', '25000'),
        ('active_sql_transaction', '25001'), ('branch_transaction_already_active', '25002'),
        ('inappropriate_access_mode_for_branch_transaction', '25003'),
        ('inappropriate_isolation_level_for_branch_transaction', '25004'),
        ('no_active_sql_transaction_for_branch_transaction', '25005'),
        ('schema_and_data_statement_mixing_not_supported', '25007'),
        ('held_cursor_requires_same_isolation_level', '25008'),
        ('no_active_sql_transaction', '25P01'), ('in_failed_sql_transaction', '25P02'),
        ('idle_in_transaction_session_timeout', '25P03'), ('transaction_timeout', '25P04'),
        ('invalid_transaction_termination', '2D000'), ('external_routine_exception', '38000'),
        ('containing_sql_not_permitted', '38001'),
        ('external_routine_invocation_exception', '39000'), ('invalid_sqlstate_returned', '39001'),
        ('trigger_protocol_violated', '39P01'), ('srf_protocol_violated', '39P02'),
        ('event_trigger_protocol_violated', '39P03'), ('savepoint_exception', '3B000'),
        ('invalid_savepoint_specification', '3B001'), ('transaction_rollback', '40000'),
        ('serialization_failure', '40001'),
        ('transaction_integrity_constraint_violation', '40002'),
        ('statement_completion_unknown', '40003'), ('deadlock_detected', '40P01'),
        ('invalid_object_definition', '42P17'), ('insufficient_resources', '53000'),
        ('disk_full', '53100'), ('out_of_memory', '53200'), ('too_many_connections', '53300'),
        ('configuration_limit_exceeded', '53400'), ('program_limit_exceeded', '54000'),
        ('statement_too_complex', '54001'), ('too_many_columns', '54011'),
        ('too_many_arguments', '54023'), ('object_not_in_prerequisite_state', '55000'),
        ('object_in_use', '55006'), ('cant_change_runtime_param', '55P02'),
        ('lock_not_available', '55P03'), ('unsafe_new_enum_value_usage', '55P04'),
        ('operator_intervention', '57000'), ('query_canceled', '57014'),
        ('admin_shutdown', '57P01'), ('crash_shutdown', '57P02'), ('cannot_connect_now', '57P03'),
        ('database_dropped', '57P04'), ('idle_session_timeout', '57P05'),
        ('system_error', '58000'), ('io_error', '58030'), ('undefined_file', '58P01'),
        ('duplicate_file', '58P02'), ('file_name_too_long', '58P03'),
        ('config_file_error', 'F0000'), ('lock_file_exists', 'F0001'), ('fdw_error', 'HV000'),
        ('fdw_out_of_memory', 'HV001'), ('fdw_dynamic_parameter_value_needed', 'HV002'),
        ('fdw_invalid_data_type', 'HV004'), ('fdw_column_name_not_found', 'HV005'),
        ('fdw_invalid_data_type_descriptors', 'HV006'), ('fdw_invalid_column_name', 'HV007'),
        ('fdw_invalid_column_number', 'HV008'), ('fdw_invalid_use_of_null_pointer', 'HV009'),
        ('fdw_invalid_string_format', 'HV00A'), ('fdw_invalid_handle', 'HV00B'),
        ('fdw_invalid_option_index', 'HV00C'), ('fdw_invalid_option_name', 'HV00D'),
        ('fdw_option_name_not_found', 'HV00J'), ('fdw_reply_handle', 'HV00K'),
        ('fdw_unable_to_create_execution', 'HV00L'), ('fdw_unable_to_create_reply', 'HV00M'),
        ('fdw_unable_to_establish_connection', 'HV00N'), ('fdw_no_schemas', 'HV00P'),
        ('fdw_schema_not_found', 'HV00Q'), ('fdw_table_not_found', 'HV00R'),
        ('fdw_function_sequence_error', 'HV010'), ('fdw_too_many_handles', 'HV014'),
        ('fdw_inconsistent_descriptor_information', 'HV021'),
        ('fdw_invalid_attribute_value', 'HV024'),
        ('fdw_invalid_string_length_or_buffer_length', 'HV090'),
        ('fdw_invalid_descriptor_field_identifier', 'HV091'), ('plpgsql_error', 'P0000'),
        ('no_data_found', 'P0002'), ('too_many_rows', 'P0003'), ('assert_failure', 'P0004'),
        ('internal_error', 'XX000'), ('data_corrupted', 'XX001'), ('index_corrupted', 'XX002')
),
coded as (
    select nm.oid, nm.signature, nm.raised,
        case
            when nm.raised = 'into strict' then 'P0002'
            when nm.raised ~ '^[0-9A-Z]{5}$' then nm.raised
            else c.sqlstate
        end as sqlstate
    from named nm
    left join conditions c on c.condition_name = nm.raised
),
judged as (
    select cd.oid, cd.signature, cd.raised, cd.sqlstate,
        case
            when cd.sqlstate ~ '^08' then 503
            when cd.sqlstate ~ '^09' then 500
            when cd.sqlstate ~ '^0[LP]' then 403
            when cd.sqlstate in ('23503', '23505') then 409
            when cd.sqlstate = '25006' then 405
            when cd.sqlstate = '21000' then 500
            when cd.sqlstate ~ '^(25|2D|38|39|3B|40)' then 500
            when cd.sqlstate = '53400' then 500
            when cd.sqlstate ~ '^53' then 503
            when cd.sqlstate ~ '^(54|55)' then 500
            when cd.sqlstate = '57P01' then 503
            when cd.sqlstate ~ '^(57|58|F0|HV)' then 500
            when cd.sqlstate = 'P0001' then 400
            when cd.sqlstate ~ '^(P0|XX)' then 500
            when cd.sqlstate = '42P17' then 500
            when cd.sqlstate ~ '^PT[0-9]{3}$' then pg_catalog.substr(cd.sqlstate, 3)::integer
            when cd.sqlstate ~ '^PT' then 500
            else 400
        end as status
    from coded cd
    where cd.sqlstate is not null
)
select
    'api_error_maps_to_5xx' as name,
    'ERROR' as level,
    j.signature as object,
    'Function ' || j.signature || ' raises '
        || pg_catalog.string_agg(distinct
            case
                when j.raised = 'into strict' then 'P0002/P0003 (SELECT ... INTO STRICT)'
                when j.raised = j.sqlstate then j.sqlstate
                else j.sqlstate || ' (' || j.raised || ')'
            end || ' -> HTTP ' || j.status, ', ')
        || ', which PostgREST answers as a server error, so clients and monitoring'
        || ' see an outage where the caller only made a mistake.' as detail,
    'Raise a code PostgREST maps to 4xx with a hint: PT404 not found, PT409 conflict,'
        || ' PT410 gone, 42501 forbidden, 22023 invalid input;'
        || ' replace SELECT ... INTO STRICT by a checked SELECT INTO.' as remediation
from judged j
where j.status >= 500
group by j.oid, j.signature
