<?php
// Theme functions for the cairn demo theme.
add_action( 'wp_enqueue_scripts', function () {
	wp_enqueue_style( 'cairn-demo', get_stylesheet_uri(), array(), '1.0.0' );
} );
