<?php
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'wp' );
define( 'DB_PASSWORD', 'not-a-real-password' );
define( 'DB_HOST', '127.0.0.1' );
define( 'WP_HOME', 'https://example.com' );
define( 'WP_SITEURL', 'https://example.com' );
define( 'SITE_TITLE', 'cairn sample blog' );
$table_prefix = 'wp_';
