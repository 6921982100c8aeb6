<?php
require_once __DIR__ . '/wp-config.php';
echo '<h1>' . htmlspecialchars( SITE_TITLE ) . '</h1>';
