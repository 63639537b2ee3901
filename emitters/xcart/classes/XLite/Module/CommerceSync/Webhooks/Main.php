<?php
// vim: set ts=4 sw=4 sts=4 et:

/**
 * commerce-sync store events for X-Cart 5.
 */

namespace XLite\Module\CommerceSync\Webhooks;

/**
 * The module's description for X-Cart (X-Cart 5.3.2 classes/XLite/Module/AModule.php; laid
 * out as the distribution's own modules, e.g. XC\MailChimp\Main). showSettingsForm() without
 * getSettingsForm() gives X-Cart's standard settings page of the options in install.yaml.
 */
abstract class Main extends \XLite\Module\AModule
{
    public static function getAuthorName()
    {
        return 'CommerceSync';
    }

    public static function getModuleName()
    {
        return 'commerce-sync store events';
    }

    public static function getDescription()
    {
        return 'Sends signed order, customer and return events to commerce-sync'
            . ' (Standard Webhooks), from an outbox table and the cron task.';
    }

    public static function getMajorVersion()
    {
        return '5.3';
    }

    public static function getMinorVersion()
    {
        return '0';
    }

    public static function getBuildVersion()
    {
        return '1';
    }

    public static function showSettingsForm()
    {
        return true;
    }
}
