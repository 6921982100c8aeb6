--
-- PostgreSQL database dump
--



SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: f(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.f() RETURNS text
    LANGUAGE sql
    AS $$ SELECT 'https://example.com' $$;


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: wp_options; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.wp_options (
    option_id bigint NOT NULL,
    option_name text,
    option_value text
);


--
-- Name: wp_options_option_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.wp_options_option_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: wp_options_option_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.wp_options_option_id_seq OWNED BY public.wp_options.option_id;


--
-- Name: wp_posts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.wp_posts (
    id bigint NOT NULL,
    post_content text,
    post_excerpt text,
    guid text
);


--
-- Name: wp_posts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.wp_posts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: wp_posts_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.wp_posts_id_seq OWNED BY public.wp_posts.id;


--
-- Name: wp_options option_id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.wp_options ALTER COLUMN option_id SET DEFAULT nextval('public.wp_options_option_id_seq'::regclass);


--
-- Name: wp_posts id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.wp_posts ALTER COLUMN id SET DEFAULT nextval('public.wp_posts_id_seq'::regclass);


--
-- Data for Name: wp_options; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.wp_options VALUES (1, 'siteurl', 'https://staging.example.com/wp');
INSERT INTO public.wp_options VALUES (2, 'home', 'https://staging.example.com');
INSERT INTO public.wp_options VALUES (3, 'upload_path', '/srv/staging/wp-content/uploads');
INSERT INTO public.wp_options VALUES (4, 'widget_emoji', 'a:1:{i:2;a:2:{s:5:"title";s:9:"Café ☕";s:4:"text";s:44:"🎉 https://staging.example.com/ünïcödé";}}');
INSERT INTO public.wp_options VALUES (5, 'quote_semicolon', 'a:2:{s:1:"a";s:34:"x";y\";https://staging.example.com";s:1:"b";s:3:"";"";}');
INSERT INTO public.wp_options VALUES (6, 'nested', 'a:2:{s:5:"inner";a:1:{s:3:"url";s:27:"https://staging.example.com";}s:6:"double";s:35:"s:27:"https://staging.example.com";";}');
INSERT INTO public.wp_options VALUES (7, 'refs', 'a:3:{i:0;O:8:"stdClass":1:{s:1:"u";s:27:"https://staging.example.com";}i:1;R:3;i:2;r:2;}');
INSERT INTO public.wp_options VALUES (8, 'floats', 'a:4:{i:0;d:0.1000000000000000055511151231257827;i:1;d:1.0E+25;i:2;d:-0;i:3;d:INF;}');
INSERT INTO public.wp_options VALUES (9, 'json_in_serialized', 'a:1:{s:4:"json";s:45:"{"url":"https:\/\/staging.example.com\/page"}";}');
INSERT INTO public.wp_options VALUES (10, 'json_in_json', '{"outer":"{\"url\":\"https:\\\/\\\/staging.example.com\"}"}');
INSERT INTO public.wp_options VALUES (11, 'base64', 'aHR0cHM6Ly9leGFtcGxlLmNvbS93cC1jb250ZW50L3VwbG9hZHM=');
INSERT INTO public.wp_options VALUES (12, 'text_then_serialized', 'Moved to https://staging.example.com a:1:{s:1:"u";s:19:"https://staging.example.com";}');
INSERT INTO public.wp_options VALUES (13, 'broken_serialized', 'a:1:{s:3:"url";s:20:"https://example.com";}');
INSERT INTO public.wp_options VALUES (14, 'custom_object', 'C:8:"MyCustom":21:{x:https://example.com}');
INSERT INTO public.wp_options VALUES (15, 'enum', 'a:2:{i:0;E:11:"Suit:Hearts";i:1;s:27:"https://staging.example.com";}');
INSERT INTO public.wp_options VALUES (16, 'other_domains', 'https://example.com.au https://myexample.com https://example.community');
INSERT INTO public.wp_options VALUES (17, 'tabs', 'tab	here https://staging.example.com
newline \ backslash ''quote''');


--
-- Data for Name: wp_posts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.wp_posts VALUES (1, '<!-- wp:image {"url":"https:\/\/staging.example.com\/a.jpg","caption":"\u003ca href=\u0022https:\u002f\u002fstaging.example.com\u0022\u003e \u0026amp;"} -->
<figure><img src="https://staging.example.com/a.jpg"/></figure>
<!-- /wp:image -->', 'Mail me@example.com', 'https://example.com/?p=1');
INSERT INTO public.wp_posts VALUES (2, '<a href="//staging.example.com/x">rel</a> <a href="http://staging.example.com/old">old</a> https%3A%2F%2Fstaging.example.com%2Fenc https%3a%2f%2fstaging.example.com', '', 'https://example.com/?p=2');
INSERT INTO public.wp_posts VALUES (3, 'path /srv/staging/wp-content and /var/www/production stays', '', 'https://example.com/?p=3');


--
-- Name: wp_options_option_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.wp_options_option_id_seq', 17, true);


--
-- Name: wp_posts_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.wp_posts_id_seq', 3, true);


--
-- Name: wp_options wp_options_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.wp_options
    ADD CONSTRAINT wp_options_pkey PRIMARY KEY (option_id);


--
-- Name: wp_posts wp_posts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.wp_posts
    ADD CONSTRAINT wp_posts_pkey PRIMARY KEY (id);


--
-- PostgreSQL database dump complete
--


