<?php
/**
 * Front to the sample site. A tiny stand-in for a WordPress tree, shipped so
 * that the README's quickstart has something real to snapshot and restore.
 */
define( 'WP_USE_THEMES', true );
require __DIR__ . '/wp-blog-header.php';
